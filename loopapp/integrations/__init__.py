"""Faces of the device on the network: Home Assistant over MQTT, and the mDNS advertisement.

They depend on the library's interfaces (the player's controls, status and change counter,
the library's playlist) and never the other way round: ``libloop`` imports neither paho nor
zeroconf. Both packages are imported late, inside the components that use them, and a
missing one becomes one sentence: "MQTT needs the mqtt extra: pip install 'libloop[mqtt]'".
"""
