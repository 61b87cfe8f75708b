"""Programs that run inside the lab's containers. Standard library only, Python >= 3.9.

``COMMANDS`` maps each command installed on the image's PATH to the module of
this package whose ``main(argv=None) -> int`` it runs.
"""

#: Set by the node supervisor for each app it starts; the apps tag their events with it.
APP_NAME_ENV = "SOCKLAB_APP"

COMMANDS = {
    "socklab-node": "supervisor",
    "socklab-start": "supervisor_start",
    # issue 4: servers, clients, resolver probe, demos, errno reproductions
    "tcp-server": "tcp_server",
    "tcp-client": "tcp_client",
    "udp-server": "udp_server",
    "udp-client": "udp_client",
    "resolve": "resolve",
    "errno": "errno_repro",
    "socketpair": "socketpair_demo",
    "makefile": "makefile_demo",
    "oob": "oob_demo",
    "raw-ping": "raw_ping",
    "seqpacket": "seqpacket_demo",
    "sockopts": "sockopts_demo",
    "types": "types_demo",
    "names": "names_demo",
    "shutdown": "shutdown_demo",
    # issue 13: the course
    "dns-stub": "dns_stub",
    "sendrecv": "sendrecv_demo",
    "socklab-sockets": "sockstat",  # issue 5: socket state from /proc
    "socklab-netctl": "netctl",  # issue 11: faults, impairments, routes (run by helpers)
    "socklab-netdelay": "netdelay",
}
