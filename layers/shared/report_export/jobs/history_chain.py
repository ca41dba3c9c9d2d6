"""The report history's chain: each entry carries the hash of the one before it, so that an entry edited,
removed or put out of order afterwards shows.

Entries are written by whoever records the change (the API, the generator, the state machine's
transactions) and linked into the chain after: by the next read of the history, and by the sweeper
every few minutes. Linking one entry is a transaction that moves the chain's head on only from where
it was read, so sealers running at once never fork it; an entry written late (a store retried by the
state machine) is linked after the ones already sealed, not between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from report_export.aws.dynamo.codecs import StoredHistoryEntry
from report_export.aws.dynamo.history import HistoryRepository
from report_export.core.history import GENESIS, ChainCheck, chain_link

# Each round re-reads the chain after another sealer moved it on; a few are plenty for one report.
_ROUNDS = 5


@dataclass(frozen=True, slots=True)
class _Chain:
    """The chain as read: how many entries are sealed, the head's hash, and every entry."""

    sealed: int
    head: str | None
    entries: list[StoredHistoryEntry]


class HistoryChain:
    def __init__(self, history: HistoryRepository) -> None:
        self._history = history

    def seal(self, tenant_id: str, job_id: str) -> int:
        """Link the report's unsealed entries into its chain; how many this call linked."""
        linked, _ = self._seal(tenant_id, job_id)
        return linked

    def seal_and_check(self, tenant_id: str, job_id: str) -> ChainCheck:
        """Link what is unsealed, then check the whole chain (from the same read when nothing was left to link)."""
        _, chain = self._seal(tenant_id, job_id)
        return _checked(chain)

    def check(self, tenant_id: str, job_id: str) -> ChainCheck:
        return _checked(self._read(tenant_id, job_id))

    def unsealed(self, *, limit: int) -> list[tuple[str, str]]:
        """(tenant, report) of reports with entries waiting to be linked."""
        return self._history.unsealed(limit=limit)

    def _read(self, tenant_id: str, job_id: str) -> _Chain:
        sealed, head = self._history.chain_head(tenant_id, job_id)
        return _Chain(sealed, head, self._history.all_entries(tenant_id, job_id))

    def _seal(self, tenant_id: str, job_id: str) -> tuple[int, _Chain]:
        """How many entries were linked, and the chain as last read (after the links, when there were any)."""
        linked = 0
        chain = self._read(tenant_id, job_id)
        for _ in range(_ROUNDS):
            pending = [entry for entry in chain.entries if entry.seq is None]
            if not pending:
                break
            previous, position = chain.head or GENESIS, chain.sealed
            for entry in pending:
                position += 1
                link = chain_link(previous, entry.event)
                if not self._history.seal(tenant_id, entry.event, seq=position, previous=previous, link=link):
                    break  # another sealer moved the head: read it again
                linked, previous = linked + 1, link
            chain = self._read(tenant_id, job_id)
        return linked, chain


def _checked(chain: _Chain) -> ChainCheck:
    sealed, head, entries = chain.sealed, chain.head, chain.entries
    chained = sorted((entry for entry in entries if entry.seq is not None), key=lambda entry: entry.seq or 0)
    unsealed = len(entries) - len(chained)
    previous = GENESIS
    for position, entry in enumerate(chained, start=1):
        problem = _broken_link(entry, position, previous)
        if problem is not None:
            return ChainCheck(
                intact=False,
                sealed=sealed,
                unsealed=unsealed,
                head=head,
                first_broken=entry.event.id,
                problem=problem,
            )
        previous = entry.hash or ""
    if len(chained) != sealed or (chained[-1].hash if chained else None) != head:
        return ChainCheck(
            intact=False,
            sealed=sealed,
            unsealed=unsealed,
            head=head,
            problem="the chain ends before its head: its last entries were removed",
        )
    return ChainCheck(intact=True, sealed=sealed, unsealed=unsealed, head=head)


def _broken_link(entry: StoredHistoryEntry, position: int, previous: str) -> str | None:
    if entry.seq != position:
        return "an entry before it was removed"
    if entry.previous != previous:
        return "it does not follow the entry before it"
    if chain_link(previous, entry.event) != entry.hash:
        return "it was changed after it was written"
    return None
