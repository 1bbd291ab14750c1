"""Hardware-in-the-loop rig and conformance suite."""
