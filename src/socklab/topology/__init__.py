"""The topology: a lab's YAML file as pydantic models, loaded with file/line-precise errors."""

from socklab.topology.errors import Problem, TopologyError
from socklab.topology.loader import load_topology, parse_topology
from socklab.topology.model import Topology
from socklab.topology.schema import json_schema

__all__ = [
    "Problem",
    "Topology",
    "TopologyError",
    "json_schema",
    "load_topology",
    "parse_topology",
]
