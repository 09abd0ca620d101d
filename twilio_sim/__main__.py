"""``python -m twilio_sim``."""

import sys

from twilio_sim.cli import main

sys.exit(main())
