"""The models' field descriptions, from their attribute docstrings, for the JSON Schema.

A field is described by the string just under it (as pydantic's ``use_attribute_docstrings``
reads them). Pydantic would read every model class's source when the class is made, a
third of the time ``socklab validate`` takes; these are read only when ``socklab schema``
asks: each module's source is parsed once, and :class:`DescribedFields` adds a field's
description to its property unless the field gave one itself.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema


@functools.cache
def _module_tree(module: str) -> ast.Module | None:
    try:
        return ast.parse(inspect.getsource(sys.modules[module]))
    except (KeyError, OSError, TypeError, SyntaxError):
        return None


def _own_docstrings(cls: type) -> dict[str, str]:
    """Field name -> the docstring under it, in this class's own body."""
    body: list[ast.stmt] = getattr(_module_tree(cls.__module__), "body", [])
    for name in cls.__qualname__.split("."):
        found = next((s for s in body if isinstance(s, ast.ClassDef) and s.name == name), None)
        if found is None:
            return {}
        body = found.body
    docs = {}
    for stmt, after in itertools.pairwise(body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


@functools.cache
def field_docstrings(cls: type[BaseModel]) -> dict[str, str]:
    """Every field of a model (its bases' too) -> its attribute docstring."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if issubclass(klass, BaseModel) and klass is not BaseModel:
            docs.update(_own_docstrings(klass))
    return {name: doc for name, doc in docs.items() if name in cls.model_fields}


class DescribedFields(GenerateJsonSchema):
    """Pydantic's JSON Schema with each field's attribute docstring as its description."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        cls: Any = schema["cls"]
        props = json_schema.get("properties")
        if isinstance(props, dict):
            for name, doc in field_docstrings(cls).items():
                prop = props.get(name)
                if isinstance(prop, dict) and "description" not in prop:
                    prop["description"] = doc
        return json_schema
