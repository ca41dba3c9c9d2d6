from report_export.core.errors import describe_validation_errors


def test_messages_name_the_field_and_drop_pydantic_prefixes():
    errors = [{"loc": ("body",), "msg": "Value error, end_date must be on or after start_date", "type": "value_error"}]

    assert describe_validation_errors(errors) == "end_date must be on or after start_date"


def test_messages_never_echo_the_value_sent():
    secret_value = "DROP TABLE jobs; --"
    errors = [
        {
            "loc": ("query", "limit"),
            "msg": "Input should be a valid integer",
            "type": "int_parsing",
            "input": secret_value,
        }
    ]

    message = describe_validation_errors(errors)

    assert message == "limit: Input should be a valid integer"
    assert secret_value not in message


def test_special_cases_read_as_sentences():
    assert describe_validation_errors([{"loc": ("body", 1), "msg": "JSON decode error", "type": "json_invalid"}]) == (
        "the request body is not valid JSON"
    )
    assert describe_validation_errors([{"loc": ("body",), "msg": "Field required", "type": "missing"}]) == (
        "a JSON request body is required"
    )
    assert describe_validation_errors(
        [{"loc": ("body", "colour"), "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}]
    ) == ("colour: unknown field")


def test_long_field_names_are_cut_and_issues_are_bounded():
    errors = [{"loc": ("body", "x" * 500), "msg": "bad", "type": "extra_forbidden"}] + [
        {"loc": ("body", f"f{index}"), "msg": "bad", "type": "value_error"} for index in range(10)
    ]

    message = describe_validation_errors(errors)

    assert "x" * 65 not in message
    assert message.count(";") == 4
