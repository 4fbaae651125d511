"""dkms-rustc: build out-of-tree Rust kernel modules with the exact rustc the kernel was built with."""

__version__ = "0.1.0"
