"""sparsitylib: reproduce and use the implicit filter-level sparsity of Mehta, Kim & Theobalt (CVPR 2019)."""

__version__ = "0.1.0"
