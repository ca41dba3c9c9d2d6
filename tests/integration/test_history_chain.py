"""A report's history is a chain: each entry carries the hash of the one before it, and GET …/history says
whether the chain holds, so an entry edited, removed or reordered in the table afterwards is found."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from report_export.aws.dynamo.history import HistoryRepository
from report_export.jobs.history_chain import HistoryChain
from report_export.sweeping.sweeper import sweeper

from support.reexports import JOBS, put_succeeded_report
from support.tables import table


def history_page(api, job_id: str, **query):
    response = api.call("GET", f"{JOBS}/{job_id}/history", query=query or None)
    assert response.status == 200, response.body
    return response.json


def a_report_with_history(api, aws, downloads: int = 3):
    report = put_succeeded_report(aws)
    for _ in range(downloads):
        assert api.call("GET", f"{JOBS}/{report.id}/download").status == 200
    return report


def history_items(aws, job_id: str) -> list[dict]:
    response = aws.dynamodb.query(
        TableName=aws.table_name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={":pk": {"S": "TENANT#tenant-a"}, ":prefix": {"S": f"HISTORY#{job_id}#"}},
        ConsistentRead=True,
    )
    return response["Items"]


def edit(aws, item: dict, expression: str, values: dict | None = None) -> None:
    """Change a stored entry behind the service's back, as someone with write access to the table could."""
    request = {"TableName": aws.table_name, "Key": {"PK": item["PK"], "SK": item["SK"]}, "UpdateExpression": expression}
    if values:
        request["ExpressionAttributeValues"] = values
    aws.dynamodb.update_item(**request)


def unsealed_in_index(aws) -> list[dict]:
    response = aws.dynamodb.query(
        TableName=aws.table_name,
        IndexName="Unfinished",
        KeyConditionExpression="GSI3PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "UNSEALED"}},
    )
    return response["Items"]


def test_an_untouched_history_is_intact_and_every_entry_is_in_the_chain(api, aws):
    report = a_report_with_history(api, aws)

    page = history_page(api, report.id)

    assert page["chain"]["intact"] is True
    assert page["chain"]["sealed"] == len(page["items"]) == 4 and page["chain"]["unsealed"] == 0
    assert page["chain"]["head"] == history_items(aws, report.id)[-1]["chain_hash"]["S"]
    sequence = sorted(int(item["chain_seq"]["N"]) for item in history_items(aws, report.id))
    assert sequence == [1, 2, 3, 4]


def test_the_whole_chain_is_checked_on_every_page(api, aws):
    report = a_report_with_history(api, aws)
    first = history_page(api, report.id, limit=1)
    item = history_items(aws, report.id)[-1]
    edit(aws, item, "SET actor = :other", {":other": {"S": "someone-else"}})

    again = history_page(api, report.id, limit=1)

    assert first["chain"]["intact"] is True
    assert again["chain"]["intact"] is False and again["items"] == first["items"]


def test_an_edited_entry_breaks_the_chain_where_it_was_edited(api, aws):
    report = a_report_with_history(api, aws)
    history_page(api, report.id)
    edited = history_items(aws, report.id)[1]
    edit(
        aws,
        edited,
        "SET details_json = :details",
        {":details": {"S": '{"via": "api", "expires_at": "2099-01-01T00:00:00.000Z"}'}},
    )

    chain = history_page(api, report.id)["chain"]

    assert chain["intact"] is False
    assert chain["first_broken"] == edited["id"]["S"]
    assert chain["problem"] == "it was changed after it was written"


def test_an_entry_removed_from_the_middle_breaks_the_chain(api, aws):
    report = a_report_with_history(api, aws)
    history_page(api, report.id)
    removed, following = history_items(aws, report.id)[1:3]
    aws.dynamodb.delete_item(TableName=aws.table_name, Key={"PK": removed["PK"], "SK": removed["SK"]})

    chain = history_page(api, report.id)["chain"]

    assert (chain["intact"], chain["first_broken"]) == (False, following["id"]["S"])
    assert chain["problem"] == "an entry before it was removed"


def test_the_last_entry_removed_breaks_the_chain_at_its_head(api, aws):
    report = a_report_with_history(api, aws)
    history_page(api, report.id)
    last = history_items(aws, report.id)[-1]
    aws.dynamodb.delete_item(TableName=aws.table_name, Key={"PK": last["PK"], "SK": last["SK"]})

    chain = history_page(api, report.id)["chain"]

    assert chain["intact"] is False and chain["first_broken"] is None
    assert "last entries were removed" in chain["problem"]


def test_an_entry_unsealed_by_hand_to_be_linked_again_is_found(api, aws):
    report = a_report_with_history(api, aws)
    history_page(api, report.id)
    edited = history_items(aws, report.id)[1]
    # Edited, and its link taken off so that it would be linked anew at the end.
    edit(
        aws,
        edited,
        "SET actor = :other REMOVE chain_seq, chain_previous, chain_hash",
        {":other": {"S": "someone-else"}},
    )

    chain = history_page(api, report.id)["chain"]

    assert chain["intact"] is False and chain["problem"] == "an entry before it was removed"


@pytest.mark.reliability(
    scenario="4 sealers linking one report's history at once",
    injected="four concurrent seals of 7 unsealed entries",
    checked="one chain: positions 1 to 7, each once, intact",
)
def test_sealers_at_the_same_moment_make_one_chain(api, serialized_aws):
    aws = serialized_aws
    report = a_report_with_history(api, aws, downloads=6)
    chain = HistoryChain(HistoryRepository(table()))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: chain.seal("tenant-a", report.id), range(4)))

    check = chain.check("tenant-a", report.id)

    assert (check.intact, check.sealed, check.unsealed) == (True, 7, 0)
    assert sorted(int(item["chain_seq"]["N"]) for item in history_items(aws, report.id)) == list(range(1, 8))


def test_an_entry_written_late_with_an_earlier_id_is_linked_after_the_others(api, aws):
    report = a_report_with_history(api, aws, downloads=1)
    early_id = history_items(aws, report.id)[0]["id"]["S"]
    history_page(api, report.id)
    # What a store the state machine retried leaves: an entry whose id sorts before ones already sealed.
    late = dict(history_items(aws, report.id)[0])
    late_id = early_id[:-1] + ("0" if early_id[-1] != "0" else "1")
    late.update(
        id={"S": late_id},
        SK={"S": f"HISTORY#{report.id}#{late_id}"},
        event={"S": "reexport_completed"},
        GSI3PK={"S": "UNSEALED"},
        GSI3SK={"S": f"2020-01-01T00:00:00.000Z#tenant-a#{report.id}#{late_id}"},
    )
    for name in ("chain_seq", "chain_previous", "chain_hash"):
        late.pop(name)
    aws.dynamodb.put_item(TableName=aws.table_name, Item=late)

    chain = history_page(api, report.id)["chain"]

    assert (chain["intact"], chain["sealed"]) == (True, 3)


def test_the_sweeper_seals_what_was_written_since_the_last_read(api, aws):
    report = a_report_with_history(api, aws)
    assert len(unsealed_in_index(aws)) == 4

    swept = sweeper().sweep()

    assert swept.histories_sealed == 1
    assert unsealed_in_index(aws) == []
    assert all("chain_hash" in item for item in history_items(aws, report.id))
    assert history_page(api, report.id)["chain"]["intact"] is True
