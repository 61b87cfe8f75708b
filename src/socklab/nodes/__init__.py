"""Programs that run inside the lab's containers. Standard library only, Python >= 3.9.

``COMMANDS`` maps each command installed on the image's PATH to the module of
this package whose ``main(argv=None) -> int`` it runs.
"""

COMMANDS = {
    "socklab-node": "supervisor",
    "socklab-start": "supervisor_start",
}
