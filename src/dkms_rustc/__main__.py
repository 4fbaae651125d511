"""``python -m dkms_rustc``: the same as the ``dkms-rustc`` command."""

import sys

from dkms_rustc.cli import main

sys.exit(main())
