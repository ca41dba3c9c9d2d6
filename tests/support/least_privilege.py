"""Each function's and the state machine's IAM role, as CloudFormation would create it, held against
the AWS calls the tests recorded them making.

The roles come from template.yaml transformed by samtranslator (the library `sam build` and
`sam deploy` use), so SAM's policy templates (SQSPollerPolicy, SSMParameterReadPolicy, ...) are
checked as the statements they expand into, not as their names. Intrinsic functions are resolved
with the names the tests give the resources, so a statement's Resource is compared with the ARN a
call was really made against.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator

from local.template import load_template

from support.iam_requests import ACCOUNT, PARTITION, REGION, Authorisation

STATE_MACHINE = "ReportResultStateMachine"

# What each resource is called in the emulated account the tests run against (tests/conftest.py).
_NAMES = {
    "JobsTable": "report-export-jobs",
    "ReportsBucket": "report-export-reports",
    "GenerateQueue": "report-generate",
    "GenerateDeadLetterQueue": "report-generate-dlq",
    "ScheduledExportDeadLetterQueue": "report-export-scheduled-dlq",
    "ReportTopic": "report-export",
    "ReportResultStateMachine": "report-result",
    "TenantSchedulesGroup": "report-export-test",
    "TenantSchedulesRole": "report-export-scheduler",
    "ScheduledExportFunction": "report-export-scheduled",
}
_ARNS = {
    "JobsTable": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/report-export-jobs",
    "ReportsBucket": f"arn:{PARTITION}:s3:::report-export-reports",
    "GenerateQueue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:report-generate",
    "GenerateDeadLetterQueue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:report-generate-dlq",
    "ScheduledExportDeadLetterQueue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:report-export-scheduled-dlq",
    "ReportTopic": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:report-export",
    "ReportResultStateMachine": f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:report-result",
    "TenantSchedulesRole": f"arn:{PARTITION}:iam::{ACCOUNT}:role/report-export-scheduler",
    "ScheduledExportFunction": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:report-export-scheduled",
}
# Ref of a resource: what CloudFormation returns for each type the policies name.
_REFS = {
    "JobsTable": _NAMES["JobsTable"],
    "ReportsBucket": _NAMES["ReportsBucket"],
    "ReportTopic": _ARNS["ReportTopic"],
    "ReportResultStateMachine": _ARNS["ReportResultStateMachine"],
    "TenantSchedulesGroup": _NAMES["TenantSchedulesGroup"],
}
_PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, str], ...]  # (operator, key, value)
    policy: str

    def allows(self, request: Authorisation) -> bool:
        action_matches = any(fnmatch.fnmatchcase(request.action.lower(), pattern.lower()) for pattern in self.actions)
        resource_matches = any(fnmatch.fnmatchcase(request.resource, pattern) for pattern in self.resources)
        return action_matches and resource_matches and self._conditions_hold(dict(request.context))

    def _conditions_hold(self, context: dict[str, str]) -> bool:
        for operator, key, value in self.conditions:
            if operator != "StringEquals":
                raise ValueError(f"{self.policy}: condition operator {operator} is not evaluated by this check")
            if context.get(key) != value:
                return False
        return True


@dataclass(frozen=True)
class Role:
    name: str
    statements: tuple[Statement, ...]
    managed_policies: tuple[str, ...]

    def allows(self, request: Authorisation) -> bool:
        return any(statement.allows(request) for statement in self.statements)

    def granted(self) -> set[tuple[str, str]]:
        """Every (action, resource) pattern pair the role's statements allow."""
        return {(action, resource) for s in self.statements for action in s.actions for resource in s.resources}


def transformed_template(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """template.yaml as CloudFormation receives it after the SAM transform."""
    template = copy.deepcopy(load_template() if template is None else template)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        # What `sam package` does: code locations become S3 URIs, which the transform requires.
        for name in ("CodeUri", "DefinitionUri", "ContentUri"):
            if name in properties:
                properties[name] = "s3://packaged-artifacts/artifact.zip"
    translator = Translator(
        managed_policy_map={}, sam_parser=parser.Parser(), boto_session=boto3.Session(region_name=REGION)
    )
    return translator.translate(sam_template=template, parameter_values={})


def roles(template: dict[str, Any] | None = None) -> dict[str, Role]:
    """The role of each function and of the state machine, by the logical id of what assumes it."""
    transformed = transformed_template(template)
    resources = transformed["Resources"]
    parameters = {name: spec.get("Default") for name, spec in transformed.get("Parameters", {}).items()}
    found = {}
    for logical_id, resource in resources.items():
        if resource["Type"] not in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"):
            continue
        role_ref = resource["Properties"]["Role" if resource["Type"] == "AWS::Lambda::Function" else "RoleArn"]
        role_id = role_ref["Fn::GetAtt"][0]
        found[logical_id] = _role(role_id, resources[role_id]["Properties"], parameters)
    return found


@cache
def template_roles() -> dict[str, Role]:
    return roles()


def _role(name: str, properties: dict[str, Any], parameters: dict[str, Any]) -> Role:
    statements = []
    for policy in properties.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
                raise ValueError(
                    f"{name}/{policy['PolicyName']}: only Allow statements with Action and Resource are checked"
                )
            statements.append(
                Statement(
                    actions=tuple(_as_list(statement["Action"])),
                    resources=tuple(_resolve(r, parameters) for r in _as_list(statement["Resource"])),
                    conditions=tuple(
                        (operator, key, _resolve(value, parameters))
                        for operator, pairs in statement.get("Condition", {}).items()
                        for key, value in pairs.items()
                    ),
                    policy=policy["PolicyName"],
                )
            )
    return Role(name, tuple(statements), tuple(properties.get("ManagedPolicyArns", [])))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resolve(value: Any, parameters: dict[str, Any], variables: dict[str, str] | None = None) -> str:
    if isinstance(value, str):
        return value
    (function, argument), *_ = value.items()
    if function == "Ref":
        if argument in _PSEUDO:
            return _PSEUDO[argument]
        if argument in parameters:
            return str(parameters[argument])
        return _REFS[argument]
    if function == "Fn::GetAtt":
        logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        return _get_att(logical_id, attribute)
    if function == "Fn::Sub":
        text, extra = (argument, {}) if isinstance(argument, str) else argument
        bound = {name: _resolve(v, parameters) for name, v in extra.items()}
        return re.sub(r"\$\{([^}]+)\}", lambda m: _substitute(m.group(1), bound, parameters), text)
    if function == "Fn::Join":
        separator, parts = argument
        return separator.join(_resolve(part, parameters) for part in parts)
    raise ValueError(f"intrinsic {function} is not resolved by this check")


def _substitute(name: str, bound: dict[str, str], parameters: dict[str, Any]) -> str:
    if name in bound:
        return bound[name]
    if "." in name and not name.startswith("AWS::"):
        return _get_att(*name.split(".", 1))
    return _resolve({"Ref": name}, parameters)


def _get_att(logical_id: str, attribute: str) -> str:
    if attribute == "Arn":
        return _ARNS[logical_id]
    if attribute in ("QueueName", "TopicName", "Name"):
        return _NAMES[logical_id]
    raise ValueError(f"GetAtt {logical_id}.{attribute} is not resolved by this check")
