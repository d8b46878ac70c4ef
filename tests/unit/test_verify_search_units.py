"""Pure parts of ``verify --search``: the keyword phrase and the folding of a re-check."""

from __future__ import annotations

from sqlite_to_weaviate.verify.search import Recall, SearchFailure, SearchReport, phrase_words, recheck_search


def test_phrase_words_pick_distinctive_words_in_text_order():
    assert phrase_words("The quick brown fox jumps over the lazy dog", limit=3) == ["quick", "brown", "jumps"]
    assert phrase_words("The quick brown fox jumps over the lazy dog", limit=2, frequency={"quick": 9, "brown": 9,
                                                                                            "jumps": 9, "over": 9}) == ["fox", "lazy"]
    assert phrase_words("ok thanks") == ["ok", "thanks"]
    assert phrase_words("a the and") == []
    assert phrase_words("snake_case and CamelCase x2") == ["snake", "case", "camelcase", "x2"]


def test_a_recheck_after_repair_counts_what_is_found_now():
    report = SearchReport("C", k=10, min_recall=0.9, sampled=10, keyword=Recall(10, 8), vectors={"v": Recall(10, 9)},
                          failures=[SearchFailure("a", [1], "keyword", "x"), SearchFailure("b", [2], "keyword", "x"),
                                    SearchFailure("c", [3], "vector:v", "x")])
    assert report.below == ["keyword"]
    again = SearchReport("C", k=10, min_recall=0.9, failures=[SearchFailure("b", [2], "keyword", "still")])
    recheck_search(report, again)
    assert report.keyword.found == 9 and report.vectors["v"].found == 10 and report.repaired == 2
    assert [f.uuid for f in report.failures] == ["b"] and report.below == []
