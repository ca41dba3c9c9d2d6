"""template.yaml as the local stack reads it: parameters, conditions, SAM Globals and intrinsic functions.

The YAML (with its !Ref, !GetAtt, !Sub tags) is decoded by cfn-lint's CloudFormation decoder.
Intrinsics are resolved against physical ids that the caller supplies (see local.resources), so
the same reading serves resource creation, the functions' environments and the HTTP routes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"  # moto's default account
NO_VALUE = object()  # AWS::NoValue: the property or list item disappears

_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_LIST_TYPES = ("CommaDelimitedList", "List<")


class TemplateError(Exception):
    """The template cannot be read or resolved locally (a missing parameter, an unknown reference)."""


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    template, problems = decode(str(path))
    if problems or template is None:
        raise TemplateError(f"{path.name} does not parse: {problems}")
    return template


def resource_properties(logical_id: str, path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return load_template(path)["Resources"][logical_id].get("Properties", {})


def merge_globals(global_section: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rule: maps merge (the resource wins), lists append (globals first), scalars override."""
    merged: dict[str, Any] = dict(global_section)
    for name, value in properties.items():
        current = merged.get(name)
        if isinstance(current, Mapping) and isinstance(value, Mapping) and not _is_intrinsic(value):
            merged[name] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[name] = [*current, *value]
        else:
            merged[name] = value
    return merged


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref", "Condition"))


@dataclass
class Physical:
    """What a deployed resource answers to !Ref and !GetAtt (names, ARNs, URLs)."""

    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)


class Template:
    """One template with its parameter values, able to resolve any part of it."""

    def __init__(
        self,
        path: Path = TEMPLATE_PATH,
        *,
        parameters: Mapping[str, str] | None = None,
        region: str = "eu-west-1",
        stack_name: str = "report-export-local",
    ) -> None:
        self.path = path
        self.directory = path.parent
        self.body = load_template(path)
        self.region = region
        self.stack_name = stack_name
        self.parameters = self._parameter_values(dict(parameters or {}))
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/local",
            "AWS::NotificationARNs": [],
        }
        self.physical = Physical()

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources", {})

    def resources_of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {
            str(logical_id): resource
            for logical_id, resource in self.resources.items()
            if resource.get("Type") in types and self.condition_holds(resource.get("Condition"))
        }

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with Globals.Function applied, as SAM deploys them."""
        global_section = self.body.get("Globals", {}).get("Function", {})
        return merge_globals(global_section, self.resources[logical_id].get("Properties", {}))

    def api_properties(self, logical_id: str) -> dict[str, Any]:
        global_section = self.body.get("Globals", {}).get("HttpApi", {})
        return merge_globals(global_section, self.resources[logical_id].get("Properties", {}))

    # Parameters and conditions

    def _parameter_values(self, overrides: dict[str, str]) -> dict[str, Any]:
        declared = self.body.get("Parameters", {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"{self.path.name} declares no parameter {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, declaration in declared.items():
            if name in overrides:
                raw = overrides[name]
            elif "Default" in declaration:
                raw = declaration["Default"]
            else:
                raise TemplateError(f"parameter {name} has no default: pass --param {name}=VALUE")
            values[name] = _parameter_value(name, declaration, raw)
        return values

    def condition_holds(self, name: str | None) -> bool:
        if name is None:
            return True
        conditions = self.body.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(conditions[name]))

    # Intrinsic functions

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function replaced by what CloudFormation would put there."""
        if isinstance(value, Mapping):
            if len(value) == 1:
                name, argument = next(iter(value.items()))
                handler = self._intrinsics.get(name)
                if handler is not None:
                    return handler(self, argument)
            resolved_map = {str(key): self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved_map.items() if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        if isinstance(value, str):
            return str(value)  # cfn-lint's string nodes carry positions; callers want plain text
        return value

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical.refs:
            return self.physical.refs[name]
        raise TemplateError(f"!Ref {name}: no parameter or local resource of that name")

    def _get_att(self, argument: Any) -> Any:
        logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        attribute = self.resolve(attribute)
        key = (str(logical_id), str(attribute))
        if key not in self.physical.attributes:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: not known locally")
        return self.physical.attributes[key]

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        variables = {name: self.resolve(item) for name, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is written out as ${Literal}
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self._get_att(name))
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, str(text))

    def _if(self, argument: list[Any]) -> Any:
        condition, when_true, when_false = argument
        return self.resolve(when_true if self.condition_holds(condition) else when_false)

    def _select(self, argument: list[Any]) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]

    def _join(self, argument: list[Any]) -> str:
        delimiter, items = argument
        return str(delimiter).join(str(item) for item in self.resolve(items))

    def _split(self, argument: list[Any]) -> list[str]:
        delimiter, text = argument
        return str(self.resolve(text)).split(str(delimiter))

    def _find_in_map(self, argument: list[Any]) -> Any:
        map_name, top, second = (self.resolve(item) for item in argument)
        return self.body["Mappings"][map_name][top][second]

    _intrinsics: dict[str, Callable[[Template, Any], Any]] = {
        "Ref": lambda self, name: self._ref(str(name)),
        "Fn::GetAtt": lambda self, argument: self._get_att(argument),
        "Fn::Sub": lambda self, argument: self._sub(argument),
        "Fn::If": lambda self, argument: self._if(argument),
        "Fn::Select": lambda self, argument: self._select(argument),
        "Fn::Join": lambda self, argument: self._join(argument),
        "Fn::Split": lambda self, argument: self._split(argument),
        "Fn::FindInMap": lambda self, argument: self._find_in_map(argument),
        "Fn::Equals": lambda self, argument: self.resolve(argument[0]) == self.resolve(argument[1]),
        "Fn::Not": lambda self, argument: not self.resolve(argument[0]),
        "Fn::And": lambda self, argument: all(self.resolve(item) for item in argument),
        "Fn::Or": lambda self, argument: any(self.resolve(item) for item in argument),
        "Condition": lambda self, name: self.condition_holds(str(name)),
    }


def _parameter_value(name: str, declaration: Mapping[str, Any], raw: Any) -> Any:
    kind = str(declaration.get("Type", "String"))
    if isinstance(raw, list):
        raw = ",".join(str(item) for item in raw)
    text = str(raw)
    allowed = declaration.get("AllowedValues")
    if allowed is not None and text not in {str(item) for item in allowed}:
        raise TemplateError(f"parameter {name}={text!r} is not one of {list(allowed)}")
    pattern = declaration.get("AllowedPattern")
    if pattern and kind == "String" and not re.fullmatch(str(pattern), text):
        raise TemplateError(f"parameter {name}={text!r} does not match {pattern}")
    if kind == "Number":
        number = float(text)
        low, high = declaration.get("MinValue"), declaration.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise TemplateError(f"parameter {name}={text} is outside [{low}, {high}]")
    if kind.startswith(_LIST_TYPES):
        return [item.strip() for item in text.split(",")] if text else []
    return text
