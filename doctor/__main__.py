import sys

from shipyard_doctor.cli import main

sys.exit(main())
