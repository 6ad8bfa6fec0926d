"""Random route tables and paths give each Router twin the answers of a naive model.

The model matches every template against the path segment by segment and keeps
the most specific (literal beats parameter at the first difference), which is
what the trie's literal-first depth-first walk must amount to. Both twins are
checked against it, so they also agree with each other.
"""

from __future__ import annotations

from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st

METHODS = ("GET", "HEAD", "POST", "DELETE")
LITERALS = ("a", "b", "tasks", "v1", "é")  # "é": a non-ASCII path takes another walk in C
VALUES = ("a", "b", "x", "42", "a%20b", "s%2Fs", "%FF", "")


class ModelRouter:
    """Routing written the obvious O(routes) way."""

    def __init__(self):
        self.routes = []  # (method, template, handler, shape)

    def add(self, method, template, handler):
        shape = tuple(None if seg.startswith("{") else seg for seg in template.split("/")[1:])
        if any(m == method and s == shape for m, _, _, s in self.routes):
            raise ValueError("conflicts")
        self.routes.append((method, template, handler, shape))

    def resolve(self, method, path):
        """(status, handler, params, allowed, template)."""
        if not path.startswith("/"):
            return (404, None, {}, (), None)
        segments = path.split("/")[1:]
        found = []  # (specificity key, method, template, handler, params)
        for m, template, handler, shape in self.routes:
            if len(shape) != len(segments):
                continue
            key, params = [], {}
            for tseg, seg, name in zip(shape, segments, template.split("/")[1:], strict=True):
                if tseg is None and seg:
                    key.append(1)
                    params[name[1:-1]] = unquote(seg)
                elif tseg == seg and tseg is not None:
                    key.append(0)
                else:
                    break
            else:
                found.append((tuple(key), m, template, handler, params))
        if not found:
            return (404, None, {}, (), None)
        best = min(f[0] for f in found)
        at_path = {f[1]: f for f in found if f[0] == best}
        methods = set(at_path) | ({"HEAD"} if "GET" in at_path else set())
        allowed = tuple(sorted(methods))
        hit = at_path.get(method) or (at_path.get("GET") if method == "HEAD" else None)
        if hit is None:
            return (405, None, {}, allowed, None)
        return (200, hit[3], hit[4], allowed, hit[2])


def as_tuple(match):
    return (match.status, match.handler, match.params, match.allowed, match.template)


@st.composite
def templates(draw):
    n = draw(st.integers(1, 4))
    parts = []
    for i in range(n):
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(LITERALS)))
        else:
            parts.append("{" + draw(st.sampled_from(("id", "name", "p"))) + str(i) + "}")
    if draw(st.integers(0, 4)) == 0:
        parts.append("")  # trailing slash
    return "/" + "/".join(parts)


@st.composite
def paths(draw, tables):
    """Paths near the table: templates with values filled in, and random ones."""
    if tables and draw(st.booleans()):
        template = draw(st.sampled_from(tables))
        segs = [
            draw(st.sampled_from(VALUES)) if seg.startswith("{") else seg
            for seg in template.split("/")[1:]
        ]
        return "/" + "/".join(segs)
    segs = draw(st.lists(st.sampled_from(LITERALS + VALUES), max_size=5))
    prefix = draw(st.sampled_from(("/", "/", "/", "")))
    return prefix + "/".join(segs)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_twin_resolves_like_the_model(router_module, data):
    table = data.draw(
        st.lists(st.tuples(st.sampled_from(METHODS), templates()), min_size=1, max_size=12)
    )
    router, model = router_module.Router(), ModelRouter()
    for index, (method, template) in enumerate(table):
        outcomes = []
        for target in (router, model):
            try:
                target.add(method, template, index)
                outcomes.append("ok")
            except ValueError:
                outcomes.append("conflict")
        assert outcomes[0] == outcomes[1], (method, template)
    assert len(router) == len(model.routes)
    templates_ = [t for _, t in table]
    for _ in range(20):
        method = data.draw(st.sampled_from(METHODS + ("PUT",)))
        path = data.draw(paths(templates_))
        expected = model.resolve(method, path)
        assert as_tuple(router.resolve(method, path)) == expected, (method, path)
        assert router.allowed_methods(path) == expected[3]


@settings(max_examples=200, deadline=None)
@given(path=st.text(alphabet="/ab%2F{}?#é\x00", max_size=30))
def test_any_text_path_is_answered_without_error(router_module, path):
    router = router_module.Router()
    router.add("GET", "/a/{x}", "one")
    router.add("GET", "/a/b", "exact")
    router.add("POST", "/{x}/{y}/", "two")
    assert router.resolve("GET", path).status in (200, 404, 405)


@settings(max_examples=500, deadline=None)
@given(raw=st.text(alphabet="%%%0123456789abcdefABCDEFGg/é\x00 ", max_size=24))
def test_decode_param_is_unquote(router_module, raw):
    # The compiled twin decodes in C; it must give exactly what urllib does.
    assert router_module.decode_param(raw) == unquote(raw)
