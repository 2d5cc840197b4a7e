"""English stop words, which a query's loose words are matched without.

Words such as "the", "what" or "did" occur in most memories, so matching on
them ranks by noise: on LoCoMo's dialogue turns, dropping them from queries
lifts lexical recall@10 from 0.568 to 0.595 and hybrid from 0.594 to 0.612,
and changes nothing on observation facts (benchmarks/RESULTS.md). Memories
are indexed whole; only the query is trimmed, and a query of stop words alone
("who is it") keeps them all. Quoted phrases and prefixes are kept as typed.

The list is the classic English one of the Snowball project (BSD licence),
as the query tokenizer splits it: apostrophes cut "don't" into "don" and "t",
so contractions appear as their fragments "s", "t", "d", "ll", "re", "ve" and
"m"; their stems that are words ("can", "won", "let", "don") stay searchable.
"""

from __future__ import annotations

from typing import Final

ENGLISH: Final = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by cannot could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself me more most my myself no nor not of off on once only or other
    ought our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why with would you your yours
    yourself yourselves
    s t d ll re ve m
    aren couldn didn doesn hadn hasn isn mustn shan shouldn wasn weren wouldn
    """.split()  # noqa: SIM905 -- a word list reads best as words
)

__all__ = ["ENGLISH"]
