"""Lexical relevance: BM25 over identifiers, docstrings and paths.

Identifiers are split the way people search for them: ``parse_args`` ->
``parse args``, ``HTTPServerRequest`` -> ``http server request``. Each symbol is a
document whose fields carry weights (its own name counts most, then its class,
its path, its docstring), folded into one weighted term frequency; scoring is
Okapi BM25 with the usual k1 = 1.2, b = 0.75.

The inverted index is built once per loaded struct; a query touches only the
postings of its own terms (numpy gathers), never every document.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

import numpy as np

_SPLIT = re.compile(r"[^\w]+|_+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_A-Za-z]+")
#: Words that carry no meaning in a question about code.
STOPWORDS = frozenset(
    "a an the to of in on for and or is are be by with as at it its this that these those "
    "do does how what which where when who why can i we you my our from into than then "
    "there their them use used using should would could will shall may might me".split()
)
#: Verbs that run into the noun in all-lowercase names (``getaddresses``,
#: ``formatdate``, ``readlines``): such a name also yields the two words.
_VERB_PREFIXES = (
    "get", "set", "is", "has", "make", "new", "to", "from", "parse", "format", "read",
    "write", "load", "dump", "create", "add", "remove", "find", "open", "close", "update",
    "init", "list", "send", "recv", "encode", "decode", "split", "join", "quote", "unquote",
)  # fmt: skip
K1 = 1.2
B = 0.75


def terms(text: str) -> list[str]:
    """Normalised search terms of ``text`` (identifiers split, stopwords dropped)."""
    out = []
    for chunk in _SPLIT.split(text):
        if not chunk:
            continue
        for part in _CAMEL.findall(chunk) or [chunk]:
            word = part.lower()
            out.extend(_normal(w) for w in _run_on(word) if w not in STOPWORDS)
    return out


def _normal(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]  # the lightest stemming: plurals match singulars
    return word


def _run_on(word: str) -> list[str]:
    """``getaddresses`` -> getaddresses, get, addresses (whole word kept first)."""
    if len(word) >= 6 and word.isalpha():
        for prefix in _VERB_PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 3:
                return [word, prefix, word[len(prefix) :]]
    return [word]


class LexicalIndex:
    """BM25 over ``n`` documents given as lists of (text, weight) fields."""

    def __init__(self, documents: list[list[tuple[str, float]]]) -> None:
        self.size = len(documents)
        postings: dict[str, dict[int, float]] = defaultdict(dict)
        lengths = np.zeros(self.size, dtype=np.float64)
        for doc_id, fields in enumerate(documents):
            length = 0.0
            for text, weight in fields:
                for term in terms(text):
                    bucket = postings[term]
                    bucket[doc_id] = bucket.get(doc_id, 0.0) + weight
                    length += weight
            lengths[doc_id] = length
        average = float(lengths.mean()) if self.size else 1.0
        self._norm = K1 * (1 - B + B * lengths / (average or 1.0))
        self._postings: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        for term, bucket in postings.items():
            ids = np.fromiter(bucket.keys(), dtype=np.int64, count=len(bucket))
            tfs = np.fromiter(bucket.values(), dtype=np.float64, count=len(bucket))
            idf = math.log(1 + (self.size - len(bucket) + 0.5) / (len(bucket) + 0.5))
            self._postings[term] = (ids, tfs, idf)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (zeros when nothing matches)."""
        result = np.zeros(self.size, dtype=np.float64)
        for term in set(terms(query)):
            posting = self._postings.get(term)
            if posting is None:
                continue
            ids, tfs, idf = posting
            result[ids] += idf * tfs * (K1 + 1) / (tfs + self._norm[ids])
        return result
