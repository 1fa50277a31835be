#!/bin/sh
# Make Fashion-MNIST available: nothing to do if the library finds it; otherwise install the
# Debian/Ubuntu package dataset-fashion-mnist (as root, or with password-less sudo), otherwise
# let torchvision download it. Never fails the build: the tests say what is missing.
PY=${PY:-.venv/bin/python}
"$PY" -m sparsitylib data fashion-mnist >/dev/null 2>&1 && { "$PY" -m sparsitylib data fashion-mnist; exit 0; }
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
  if [ "$SUDO" != none ]; then
    echo "installing the Debian package dataset-fashion-mnist"
    $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }
  fi
fi
"$PY" -m sparsitylib data fashion-mnist && exit 0
echo "trying torchvision's download"
"$PY" -m sparsitylib data --download fashion-mnist || echo "warning: Fashion-MNIST is not available; see data/README.md"
exit 0
