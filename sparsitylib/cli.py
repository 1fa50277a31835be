"""Command line: ``python -m sparsitylib <command> ...``.

    python -m sparsitylib run [--preset smoke|demo|quick|long|paper] [--force] [--quiet] [--threads 1] key=value ...
        Train a run (or load it from the store) and print its summary as JSON.
    python -m sparsitylib layers [--preset ...] key=value ...      (alias: table)
        The same, printed as a per-layer table of dead filters.
    python -m sparsitylib headline [--preset quick]                 (alias: tables)
        The headline comparison: Adam+L2, Adam without regularization and SGD+L2, one table after another.
    python -m sparsitylib runs [--runs DIR] [key=value ...]
        List the stored runs (id, status, key settings, dead filters, test error), filtered by settings.
    python -m sparsitylib reproduce [--preset quick] [--only 01,03] [-p name value ...] [--runs DIR]
        Execute the preset's report notebooks with papermill; figures and an HTML report in figures/<preset>/.
    python -m sparsitylib reproduce --from-archive [--preset quick] [--runs DIR]
        The same from the committed run records (figures/<preset>/runs.jsonl.gz) and the pruning tables
        measured on their networks (figures/<preset>/measurements.json.gz): no training.
    python -m sparsitylib archive [--preset quick] [--runs DIR] [--figures DIR] [--out PATH] [--add]
        Write the records of the runs behind figures/<preset>/ (no weights) to figures/<preset>/runs.jsonl.gz,
        and the store's pruning tables to figures/<preset>/measurements.json.gz; --add keeps the archived
        records and adds only the runs the archive lacks.
    python -m sparsitylib claims [--check]
        Write docs/claims.md (every claim of the paper, primary or secondary, and each regime's family)
        from sparsitylib/claims.py; --check exits 1 with a diff when it is out of date.
    python -m sparsitylib prune <run-id> [--criterion activation|gamma] [--save pruned.pt]
        Remove a stored run's dead filters; print what it bought as JSON.
    python -m sparsitylib inspect MODEL [--weights FILE] [--data NAME|imagefolder:DIR] [--images N] [--json]
                                 [--prune OUT] [--threads 1]
        Your own CNN (torchvision:<name>[:key=value,...] or package.module:factory): its dead filters per
        layer; with --prune, the smaller model saved and what it bought as JSON.
    python -m sparsitylib data [--download] [dataset]
        Check that a data set can be loaded (exit 4 with the ways to get it if not).
    python -m sparsitylib readme [--preset quick] [--check] [--readme PATH] [--figures DIR]
        Write README.md's verdict table and <!-- value:... --> numbers from figures/<preset>/*.verdict.json;
        --check writes nothing, prints the diff and exits 1 when README.md is out of date.

Exit codes:
    0  success
    1  an unexpected error (a bug: the traceback says where)
       (and readme --check: README.md differs from the verdict JSONs; the diff is printed)
    2  invalid arguments, settings or notebook parameters (nothing was run or written)
    3  a run failed: its training loss diverged (the failed run is stored as such)
    4  the data set is missing, damaged, or smaller than the settings ask for
    5  the run store cannot be written (not a folder, read-only, disk full)
    6  reproduce: one or more notebooks failed (the others ran; see the report)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path

from .archive import ARCHIVE_NAME
from .config import ConfigError, RunConfig, from_dict, parse_value
from .definitions import ZERO_OUTPUT, definitions
from .files import OutputPathError, check_output_file
from .presets import PRESETS, preset_config
from .voice import plain_warning

# The modules that load torch (data, store, training) are imported by the commands that use them,
# so that `--help` and a mistyped argument answer at once.

EXIT_OK, EXIT_USAGE, EXIT_RUN_FAILED, EXIT_DATA, EXIT_STORE, EXIT_NOTEBOOK_FAILED = 0, 2, 3, 4, 5, 6


def parse_settings(pairs: list[str]) -> dict:
    """``["optimizer=adam", "lr=1e-2"]`` -> ``{"optimizer": "adam", "lr": 0.01}``, typed."""
    settings = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {pair!r}")
        settings[key.strip()] = parse_value(key.strip(), text.strip())
    return settings


def run_summary(record: dict) -> dict:
    """The short JSON summary of a run record."""
    metrics = record.get("metrics", {})
    return {
        "run_id": record["run_id"],
        "status": record["status"],
        "failure_reason": record.get("failure_reason"),
        "cached": record.get("cached", False),
        "config": record["config"],
        "test_error": metrics.get("test_error"),
        "dead_by_activation": metrics.get("dead_by_activation"),
        "dead_by_gamma": metrics.get("dead_by_gamma"),
        "filters": metrics.get("filters"),
        "layers": {row["layer"]: {"filters": row["filters"], "dead_by_activation": row["dead_by_activation"],
                                  "dead_by_gamma": row["dead_by_gamma"]} for row in record.get("layers", [])},
        "duration_s": record.get("environment", {}).get("duration_s"),
    }


def layer_table(record: dict) -> str:
    """A plain-text per-layer table of dead filters, with the run's test error."""
    config = record["config"]
    decay = "" if config["decay_mode"] == "none" else f" {config['decay']:g}"
    title = f"{config['optimizer']} lr={config['lr']:g} {config['decay_mode']}{decay}  (run {record['run_id']})"
    if record["status"] != "completed":
        return f"{title}\n  FAILED: {record['failure_reason']}"
    lines = [title, f"  {'layer':<6}{'filters':>8}{'dead (act)':>12}{'dead (gamma)':>14}"]
    for row in record["layers"]:
        lines.append(f"  {row['layer']:<6}{row['filters']:>8}{row['dead_by_activation']:>12}{row['dead_by_gamma']:>14}")
    m = record["metrics"]
    lines.append(f"  {'total':<6}{m['filters']:>8}{m['dead_by_activation_count']:>12}{m['dead_by_gamma_count']:>14}")
    lines.append(f"  dead by activation {100 * m['dead_by_activation']:.1f}%, by gamma {100 * m['dead_by_gamma']:.1f}%, "
                 f"test error {100 * m['test_error']:.2f}%")
    return "\n".join(lines)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("settings", nargs="*", metavar="key=value",
                        help=f"any RunConfig field, e.g. optimizer=adam decay_mode=l2 lr=1e-2 "
                             f"(fields: {', '.join(RunConfig.__dataclass_fields__)})")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="fill unset fields from a preset")
    parser.add_argument("--force", action="store_true", help="retrain even if the run is stored")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--download", action="store_true", help="let torchvision download a missing data set")
    parser.add_argument("--runs", default=None, help="run store folder (default $SPARSITYLIB_RUNS or ./runs)")
    _add_threads(parser)


DEFAULT_THREADS = 1  # measured in docs/benchmarks.md (benchmarks/threads.py): see "Threads for one process"


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="CPU threads for training (recorded in the run; on a machine other work shares, 1 is "
                             "fastest, see docs/benchmarks.md)")


def _set_threads(args) -> bool:
    """Apply --threads; False (after saying why) when it is not a positive number."""
    if args.threads < 1:
        print(f"error: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return False
    import torch

    torch.set_num_threads(args.threads)
    return True


HEADLINE_RUNS = (
    {"optimizer": "adam", "decay_mode": "l2"},
    {"optimizer": "adam", "decay_mode": "none"},
    {"optimizer": "sgd", "decay_mode": "l2"},
)


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help that keeps the description's line breaks and shows an option's default where its help
    does not already say it and there is one to show (not None, not a flag's False)."""

    def _get_help_string(self, action):
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sparsitylib", description=__doc__, formatter_class=_Help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     title="commands (python -m sparsitylib COMMAND --help for each)")

    def command(name: str, help: str, aliases=()) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, aliases=list(aliases), formatter_class=_Help)

    _add_run_arguments(command("run", "train one run, or load it from the store; print its summary as JSON"))
    _add_run_arguments(command("layers", "train or load one run; print its dead filters per layer",
                               aliases=["table"]))
    tables = command("headline", "the headline comparison: Adam+L2, Adam without regularization and SGD+L2, "
                                 "one per-layer table after another", aliases=["tables"])
    tables.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="the preset (see docs/configuration.md)")
    tables.add_argument("--quiet", action="store_true", help="no progress bars")
    tables.add_argument("--runs", default=None, help="run store folder (default $SPARSITYLIB_RUNS or ./runs)")
    _add_threads(tables)
    listing = command("runs", "list the stored runs: id, status, key settings, dead filters, test error")
    listing.add_argument("settings", nargs="*", metavar="key=value",
                         help="keep the runs whose config has these values, e.g. optimizer=adam decay_mode=l2")
    listing.add_argument("--runs", default=None, help="run store folder (default $SPARSITYLIB_RUNS or ./runs)")
    reproduce = command("reproduce", "run the preset's report notebooks with papermill; figures and an HTML report")
    reproduce.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="the preset (see docs/configuration.md)")
    reproduce.add_argument("--only", default=None, help="comma-separated notebook numbers or full names, e.g. 01,03 (exact: a copy of a notebook is never run)")
    reproduce.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                           help="a notebook parameter (VALUE parsed as JSON when it can be, e.g. -p seeds '[0, 1, 2]')")
    reproduce.add_argument("--figures", default=None, help="output folder (default figures/<preset>)")
    reproduce.add_argument("--from-archive", action="store_true",
                           help=f"read the runs from <figures>/{ARCHIVE_NAME} instead of training them")
    reproduce.add_argument("--runs", default=None,
                           help="run store folder the notebooks use (default $SPARSITYLIB_RUNS or ./runs; with "
                                "--from-archive a temporary one)")
    archive = command("archive", "write the run records behind a preset's report, without weights")
    archive.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="the preset (see docs/configuration.md)")
    archive.add_argument("--runs", default=None, help="run store folder (default $SPARSITYLIB_RUNS or ./runs)")
    archive.add_argument("--figures", default=None, help="the report's folder, with its verdict files "
                                                          "(default figures/<preset>)")
    archive.add_argument("--out", default=None, help=f"archive file (default <figures>/{ARCHIVE_NAME})")
    archive.add_argument("--add", action="store_true",
                         help="keep the records the archive has and add only the runs it lacks (a run trained again "
                              "for its weights keeps its archived record)")
    prune = command("prune", "remove a stored run's dead filters; report params, MACs, latency")
    prune.add_argument("run_id", help="a stored run's id (16 hex digits; `runs` lists them)")
    prune.add_argument("--criterion", choices=("activation", "gamma"), default="activation",
                       help="activation: remove filters that never fire (exact); gamma: |gamma| below threshold, "
                            "constant folded into the next layer")
    prune.add_argument("--gamma-threshold", type=float, default=1e-3, help="|gamma| below this is dead (gamma criterion)")
    prune.add_argument("--threads", type=int, default=1, help="CPU threads for the latency measurement (recorded)")
    prune.add_argument("--min-run-time", type=float, default=0.5,
                       help="seconds of timed forward passes per latency measurement (torch.utils.benchmark)")
    prune.add_argument("--save", default=None, help="write the pruned model here (channel counts + state_dict; "
                                                     "load it with sparsitylib.prune.load_pruned_model)")
    prune.add_argument("--runs", default=None, help="run store folder (default $SPARSITYLIB_RUNS or ./runs)")
    inspect = command("inspect", "measure (and prune) the dead filters of your own CNN")
    inspect.add_argument("model", metavar="MODEL",
                         help="torchvision:<name>[:key=value,...] (e.g. torchvision:resnet18:num_classes=10, or "
                              "torchvision:resnet18:weights=DEFAULT for pretrained weights), timm:<name>[:key=value,...] "
                              "(with the timm extra installed) or package.module:factory; built with seed 0")
    inspect.add_argument("--weights", default=None, help="a state_dict file (torch.save(model.state_dict(), ...))")
    inspect.add_argument("--data", default="fashion-mnist",
                         help="images to measure on: fashion-mnist, cifar10, cifar100, synthetic, or imagefolder:DIR "
                              "(DIR/<class>/<image> files; unreadable ones are skipped with a warning naming the "
                              "first; with weights=NAME in MODEL, those weights' own transforms)")
    inspect.add_argument("--images", type=int, default=1000,
                         help="how many images (from the training split); a warning when fewer exist or fewer than "
                              "100 are used, since dead-filter counts on few images overcount")
    inspect.add_argument("--image-size", type=int, default=None,
                         help="resize the images, of any --data source, to this square size (pixels, at least 1)")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    inspect.add_argument("--prune", default=None, metavar="OUT",
                         help="remove the dead filters that can be removed exactly; save the smaller model here")
    inspect.add_argument("--criterion", choices=[d.name for d in definitions()], default="activation",
                         help="the definition --prune removes. Exactly removable: activation (never fires on the "
                              "images) and dormant-0 (outputs exactly zero); gamma: |gamma| < --gamma-threshold, "
                              "its constant act(beta) folded into the next layer. The other dormant definitions "
                              "mark filters that still fire, so --prune refuses them (see docs/measurement.md)")
    inspect.add_argument("--gamma-threshold", type=float, default=1e-3, help="|gamma| below this is dead (gamma criterion)")
    inspect.add_argument("--certify", default=None, metavar="BOX",
                         help="prove which filters can never fire on any input in a box, by interval bounds "
                              "(sparsitylib.certify): LOW,HIGH for the values the model receives (after its "
                              "normalization; write --certify=-2.5,2.5 when LOW is negative), or 'data' for each channel's range over the images measured; prints "
                              "per layer how many of the filters dead on the images are certified")
    inspect.add_argument("--threads", type=int, default=1, help="CPU threads for the latency measurement (recorded)")
    inspect.add_argument("--min-run-time", type=float, default=0.5, help="seconds of timed passes per latency measurement")
    readme = command("readme", "write the README's verdict tables and quoted numbers from the verdict JSONs "
                               "(--check: exit 1 with a diff if out of date)")
    readme.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="the preset (see docs/configuration.md)")
    readme.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and print a diff if the file differs")
    readme.add_argument("--readme", default=None, help="the Markdown file (default README.md of the repository)")
    readme.add_argument("--figures", default=None,
                        help="the verdict JSONs and MANIFEST.json (default figures/<preset>)")
    claims = command("claims", "write docs/claims.md from the registry of claims (--check: exit 1 with a diff if out "
                               "of date)")
    claims.add_argument("--check", action="store_true", help="write nothing; exit 1 and print a diff if the file differs")
    data = command("data", "check that a data set is available")
    data.add_argument("dataset", nargs="?", default="fashion-mnist", help="fashion-mnist, cifar10, cifar100 or synthetic")
    data.add_argument("--download", action="store_true", help="let torchvision download it if missing")
    return parser


def _check_data(args) -> int:
    from .data import load_data

    try:
        data = load_data(args.dataset, train_size=1, test_size=1, download=args.download)
    except ValueError as error:  # an unknown data set name
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.dataset}: available ({data.num_classes} classes, {data.channels}x{data.image_size}x{data.image_size})")
    return 0


RUN_ID = re.compile(r"^[0-9a-f]{16}$")


def _bad_timing(args) -> bool:
    """Says so, when the latency options of ``prune`` or ``inspect`` cannot be used."""
    if args.threads < 1 or args.min_run_time <= 0:
        print("error: --threads must be at least 1 and --min-run-time positive", file=sys.stderr)
        return True
    return False


def _prune(args) -> int:
    from .prune import PruningError, prune_run
    from .store import RunStore

    if not RUN_ID.match(args.run_id):
        looks_like_file = Path(args.run_id).suffix in (".pt", ".pth", ".ckpt") or Path(args.run_id).exists()
        print(f"error: {args.run_id!r} is not a run id (16 hex digits, as printed by `run`)"
              + ("; for a checkpoint of your own model use `python -m sparsitylib inspect MODEL --weights "
                 f"{args.run_id} --prune OUT`" if looks_like_file else ""), file=sys.stderr)
        return EXIT_USAGE
    if _bad_timing(args):
        return EXIT_USAGE
    if args.save is not None:
        check_output_file(args.save, "--save")  # an OutputPathError: exit 2 before any work
    try:
        report = prune_run(RunStore(args.runs), args.run_id, args.criterion, args.gamma_threshold, args.threads,
                           args.min_run_time, args.save)
    except PruningError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report, indent=2))
    return EXIT_OK


def _inspect(args) -> int:
    from .certify import CertificationError, certify_dead
    from .filters import TraceError
    from .inspect_output import certificate_json, certificate_lines, definition_lines, report_json
    from .inspection import (InspectError, build_user_model, check_has_filters, check_image_options, check_prune_criterion,
                             load_images, load_weights, named_weights, warn_if_uncalibrated)
    from .sparsity import measure_sparsity

    if _bad_timing(args):
        return EXIT_USAGE
    try:
        check_image_options(args.images, args.image_size)
        if args.prune is not None:
            check_prune_criterion(args.criterion)
            check_output_file(args.prune, "--prune")  # an OutputPathError: exit 2 before any work
        model = build_user_model(args.model)
        if args.weights is not None:
            load_weights(model, args.weights)
        check_has_filters(model)
        images = load_images(args.data, args.images, model, args.image_size, weights=named_weights(args.model))
        warn_if_uncalibrated(model)  # after the checks, so that bad input gets one message
        box = _certify_box(args.certify, images) if args.certify else None
        report = measure_sparsity(model, images)
        certificate = certify_dead(model, low=box[0], high=box[1], report=report) if box else None
        pruned = _prune_user_model(args, model, report, images) if args.prune else None
    except (InspectError, TraceError, CertificationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({"model": args.model, "weights": args.weights, "data": args.data, "images": len(images),
                          **report_json(report), **({"certificate": certificate_json(certificate)} if certificate else {}),
                          **({"pruning": pruned} if pruned else {})}, indent=2, default=str))
        return EXIT_OK
    print(f"{args.model}" + (f" with {args.weights}" if args.weights else " (untrained)")
          + f": dead and dormant filters on {len(images)} {args.data} images, by every definition (--json: every column)")
    print("\n".join(definition_lines(report)))
    if certificate:
        print("\n" + "\n".join(certificate_lines(certificate)))
    if pruned:
        print(json.dumps(pruned, indent=2, default=str))
    return EXIT_OK


def _certify_box(text: str, images) -> tuple:
    """--certify's box: 'data' (each channel's range over ``images``) or LOW,HIGH."""
    from .inspection import InspectError

    if text == "data":
        values = images.transpose(0, 1).flatten(1).double()
        return values.amin(dim=1).tolist(), values.amax(dim=1).tolist()
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise InspectError(f"--certify {text!r}: give LOW,HIGH (e.g. -2.5,2.5, the values the model receives) or "
                           "'data'") from None
    if not low <= high:
        raise InspectError(f"--certify {text!r}: LOW must not be above HIGH")
    return low, high


def _prune_user_model(args, model, report, images) -> dict:
    from .inspection import InspectError
    from .prune import PruningError, prune_by_gamma, prune_dead, pruning_report, save_pruned_model

    try:
        shape = tuple(images.shape[1:])
        if args.criterion == "gamma":
            result = prune_by_gamma(model, report, args.gamma_threshold, input_shape=shape)
        else:  # activation, or dormant-0: exactly zero, i.e. dead at the smallest positive threshold
            result = prune_dead(model, report, input_shape=shape,
                                activation_threshold=None if args.criterion == "activation" else ZERO_OUTPUT)
    except PruningError as error:
        raise InspectError(str(error)) from error
    save_pruned_model(result.model, args.prune, args.model)
    summary = pruning_report(model, result, images, threads=args.threads, min_run_time=args.min_run_time)
    return {"saved_to": args.prune, **summary}


def _reproduce(args) -> int:

    from .reproduce import reproduce

    parameters = {}
    for name, text in args.parameter:
        try:
            parameters[name] = json.loads(text)
        except json.JSONDecodeError:
            parameters[name] = text
    only = [p.strip() for p in args.only.split(",")] if args.only else None
    try:
        runs = reproduce(args.preset, only, parameters, Path(args.figures) if args.figures else None,
                         from_archive=args.from_archive, runs_dir=Path(args.runs) if args.runs else None)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    failed = [r.name for r in runs if r.status != "ok"]
    if failed:
        print(f"failed notebooks: {', '.join(failed)}", file=sys.stderr)
    return EXIT_NOTEBOOK_FAILED if failed else EXIT_OK


def _archive(args) -> int:
    from .archive import MEASUREMENTS_NAME, read_archive, run_ids_behind, write_archive, write_measurements
    from .notebook import project_root
    from .store import RunStore

    figures = Path(args.figures) if args.figures else project_root() / "figures" / args.preset
    out = Path(args.out) if args.out else figures / ARCHIVE_NAME
    store = RunStore(args.runs)
    run_ids, unlisted = run_ids_behind(figures)
    if unlisted:
        print(f"{len(unlisted)} verdict files list no run_ids ({', '.join(unlisted)}): archiving every run in "
              f"{store.root}", file=sys.stderr)
        run_ids |= set(store.run_ids())
    if not run_ids:
        print(f"error: no runs to archive: the verdict files in {figures} list none and {store.root} holds none",
              file=sys.stderr)
        return EXIT_USAGE
    kept = read_archive(out) if args.add and out.is_file() else {}
    records = {run_id: kept.get(run_id) or store.get(run_id) for run_id in sorted(run_ids)}
    missing = [run_id for run_id, record in records.items() if record is None]
    if missing:
        print(f"error: {len(missing)} of the {len(records)} runs behind {figures} are not in the run store "
              f"{store.root}: {', '.join(missing)}; nothing was written", file=sys.stderr)
        return EXIT_USAGE
    write_archive(records.values(), out)
    added = f", {len(records) - len(kept)} of them new" if args.add else ""
    print(f"archived {len(records)} run records in {out} ({out.stat().st_size / 1e6:.2f} MB){added}")
    measured = write_measurements(store.root, out.parent / MEASUREMENTS_NAME)
    if measured:
        print(f"and {measured} pruning tables measured on their networks in {out.parent / MEASUREMENTS_NAME}")
    return EXIT_OK


def _readme(args) -> int:
    from . import readme
    from .notebook import project_root

    root = project_root()
    return readme.main(Path(args.readme) if args.readme else root / "README.md",
                       Path(args.figures) if args.figures else root / "figures" / args.preset, args.preset, args.check)


def _claims(args) -> int:
    from . import claims
    from .files import write_atomically
    from .notebook import project_root
    from .readme import diff

    path = project_root() / "docs" / "claims.md"
    old, new = (path.read_text() if path.is_file() else ""), claims.markdown()
    if args.check:
        difference = diff(old, new, "docs/claims.md")
        print(difference or f"{path}: matches sparsitylib/claims.py", end="" if difference else "\n")
        return 1 if difference else EXIT_OK  # as `readme --check`: 1 means "out of date"
    if old != new:
        write_atomically(path, lambda temporary: temporary.write_text(new))
    print(f"{path}: {len(claims.REGISTRY)} claims" + ("" if old != new else " (unchanged)"))
    return EXIT_OK


def _headline_tables(args) -> int:
    from .store import RunStore

    if not _set_threads(args):
        return EXIT_USAGE
    store = RunStore(args.runs)
    configs = [preset_config(args.preset, **settings) for settings in HEADLINE_RUNS]
    failed = False
    for config in configs:
        record = store.run(config, quiet=args.quiet)
        print(layer_table(record), end="\n\n", flush=True)
        failed |= record["status"] != "completed"
    return EXIT_RUN_FAILED if failed else EXIT_OK


def _run(args) -> int:
    from .store import RunStore

    config = preset_config(args.preset, **parse_settings(args.settings))
    if not _set_threads(args):
        return EXIT_USAGE
    record = RunStore(args.runs).run(config, force=args.force, quiet=args.quiet, download=args.download)
    print(json.dumps(run_summary(record), indent=2) if args.command == "run" else layer_table(record))
    return EXIT_OK if record["status"] == "completed" else EXIT_RUN_FAILED


def _list_runs(args) -> int:
    filters = parse_settings(args.settings)  # an unknown key is a ConfigError: exit 2
    from_dict(filters)  # and so is a value no run can have (optimizer=lion, decay=-1)
    from .store import RunStore

    store = RunStore(args.runs)
    records = [r for r in store.records() if all(r["config"].get(k) == v for k, v in filters.items())]
    if not records:
        print(f"no stored runs in {store.root}" + (f" with {' '.join(args.settings)}" if filters else ""))
        return EXIT_OK
    print(run_listing(records))
    print(f"{len(records)} run{'s' if len(records) != 1 else ''} in {store.root}")
    return EXIT_OK


LISTED = ("model", "width", "optimizer", "lr", "decay_mode", "decay", "epochs", "seed")


def run_listing(records: list[dict]) -> str:
    """One line per run: id, status, the settings that tell runs apart, dead filters, test error."""
    def key(record):
        return tuple(str(record["config"].get(name)) for name in LISTED)

    rows = [["run_id", "status", *LISTED, "dead", "test_error"]]
    for record in sorted(records, key=key):
        config, metrics = record["config"], record.get("metrics", {})
        dead, error = metrics.get("dead_by_activation"), metrics.get("test_error")
        shown = {n: "-" if n == "decay" and config.get("decay_mode") == "none"  # no regularizer: its strength is moot
                 else f"{config.get(n):g}" if isinstance(config.get(n), float) else str(config.get(n)) for n in LISTED}
        rows.append([record["run_id"], record["status"], *(shown[n] for n in LISTED),
                     "-" if dead is None else f"{dead:.1%}", "-" if error is None else f"{error:.1%}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


COMMANDS = {"run": _run, "layers": _run, "table": _run, "headline": _headline_tables, "tables": _headline_tables,
            "runs": _list_runs, "reproduce": _reproduce, "archive": _archive, "prune": _prune, "inspect": _inspect,
            "data": _check_data, "readme": _readme, "claims": _claims}


def faults() -> tuple:
    """Environment faults, each one message and its own exit code (most specific class first)."""
    from .data import DatasetError, DatasetNotFoundError
    from .store import RunStoreError

    return ((DatasetNotFoundError, EXIT_DATA), (DatasetError, EXIT_DATA), (RunStoreError, EXIT_STORE),
            (ConfigError, EXIT_USAGE), (OutputPathError, EXIT_USAGE))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    formatwarning, warnings.formatwarning = warnings.formatwarning, plain_warning
    known = faults()
    try:
        return COMMANDS[args.command](args)
    except tuple(fault for fault, _ in known) as error:
        print(f"error: {error}", file=sys.stderr)
        return next(code for fault, code in known if isinstance(error, fault))
    finally:
        warnings.formatwarning = formatwarning
