"""The LOOP device: composition root, configuration and the `loop` command."""
