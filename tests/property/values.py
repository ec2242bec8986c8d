"""Values for one request field: plausible ones (what a careful user sends)
and hostile ones (what an attacker, a fuzzer or a broken client sends).

Plausible values are mostly valid but not all: a plausible path may still
hold a `..` segment, a plausible number may sit just past a bound. Hostile
values are anything the wire can carry.
"""

from __future__ import annotations

import math
import operator

from hypothesis import strategies as st

# The prefixes the API under test allows for output_path and data_path.
ALLOWED_PATH_PREFIXES = ("/mnt/", "s3://models/")

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Strings that have broken parsers, shells, templates and path checks.
NASTY_STRINGS = (
    "",
    " ",
    ".",
    "..",
    "...",
    "/",
    "//",
    "\\",
    "-",
    "~",
    "\x00",
    "\n",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\x7f",
    "\u0085",
    "\u2028",
    "\u202e",
    "\ufeff",
    "\u200b",
    "\U0001f600",
    "é",
    "ǅ",
    "Ⅸ",
    "\uff10",  # a fullwidth zero
    "İ",
    "null",
    "None",
    "NaN",
    "-1",
    "0x10",
    "1e309",
    "true",
    "$(id)",
    "`id`",
    "${HOME}",
    "{{ .Values.secret }}",
    "'; DROP TABLE trainings; --",
    '"},{"injected":true',
    "%00",
    "%2e%2e",
    "%2E%2e/",
    "%252e%252e",
    "..%2f",
    "\u2024\u2024",
    "\uff0e\uff0e",  # fullwidth dots
    "a\x00b",
    "a\nb",
    "tc:training:x",
    "*",
    "?",
    "[a-z]",
)

HOSTILE_PATHS = (
    "..",
    "../../etc/passwd",
    "/mnt/../etc/shadow",
    "/mnt/data/..",
    "/mnt/data/../../../root",
    "/mnt/data/./../x",
    "/mnt\\..\\windows",
    "/mnt/data/..\\x",
    "s3://models/../other-bucket/x",
    "s3://models/%2e%2e/x",
    "s3://models/%2E%2E/x",
    "s3://models/x%2e%2e",
    "s3://models/x/%2e",
    "/mnt/data/\x00/x",
    "/mnt/data/x\n",
    "/mnt/data/x\r",
    "/mnt/data/\x7f",
    "/mnt/data/\x1b[2J",
    "/mnt",
    "/mnt2/x",
    "/mntx/data",
    "mnt/data",
    "./mnt/data",
    "//mnt/data",
    "/MNT/data",
    "s3://models",
    "s3://models-of-someone-else/x",
    "s3://modelsx/x",
    "S3://models/x",
    "s3:/models/x",
    "gs://models/x",
    "file:///mnt/data",
    "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data",
    "https://example.com/model",
    "hdfs://models/x",
    "~/data",
    "$HOME/data",
    "/mnt/data/$(id)",
    "/mnt/data/ x",
    "/mnt/\u202etxt.exe",
    "/mnt/\U0001f600/x",
    "/mnt/data/" + "a" * 5000,
)

# Label keys that are not Kubernetes label keys, and some that only look odd.
ODD_LABEL_KEYS = (
    "",
    "/",
    "a/",
    "/a",
    "a/b/c",
    "-a",
    "a-",
    "_a",
    "a_",
    ".a",
    "a.",
    "a b",
    "a\n",
    "a\t",
    "a\x00",
    "é",
    "a" * 63,
    "a" * 64,
    "Example.com/a",
    "example.com/A",
    "example..com/a",
    "-example.com/a",
    "example.com-/a",
    "example_com/a",
    "x" * 253 + "/a",
    "x" * 254 + "/a",
    "x" * 250 + ".com/" + "a" * 63,
    "kubernetes.io/name",
    "app.kubernetes.io/managed-by",
    "trainconductor.io/training-id",
    "job-name",
    "controller-uid",
    "a=b",
    "a,b",
    "a:b",
    "tc:idx:all",
)

ODD_LABEL_VALUES = (
    "",
    "-",
    "a-",
    "-a",
    "a" * 63,
    "a" * 64,
    "a b",
    "a\n",
    "a/b",
    "a=b",
    "é",
    "a\x00",
    "${x}",
)


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def _word(first: str, rest: str, max_size: int, last: str = "") -> st.SearchStrategy[str]:
    """A first character from `first`, up to `max_size` more from `rest`, and
    (when `last` is given and there is a middle) a last one from `last`.
    Quicker to draw than `from_regex`, and it shrinks as well."""

    def join(a: str, middle: str, z: str) -> str:
        return a + middle + z if middle or not last else a

    return st.builds(
        join,
        st.sampled_from(first),
        st.text(alphabet=rest, max_size=max_size),
        st.sampled_from(last) if last else st.just(""),
    )


# Strings around and far past the size bounds: at the 4096-character limit,
# past it, and (rarely: it is slow to send) past the 1 MiB message limit.
HUGE_TEXTS = st.builds(
    operator.mul,
    st.sampled_from(["a", "é", "\U0001f600", "/..", "\x00", "%2e"]),
    st.sampled_from([254, 4096, 4097, 8193, 70_000] * 3 + [1_100_000]),
)

HOSTILE_TEXTS = st.one_of(
    st.text(),  # any code point but surrogates: control characters included
    st.text(st.characters(codec="ascii"), max_size=40),
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(HOSTILE_PATHS),
    HUGE_TEXTS,
)

HOSTILE_PATH_VALUES = st.one_of(st.sampled_from(HOSTILE_PATHS), HOSTILE_TEXTS)

HOSTILE_FLOATS = st.one_of(
    st.floats(),  # NaN and both infinities included
    st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e39]),
    st.floats(width=32),
)

HOSTILE_INT32S = st.one_of(
    st.integers(INT32_MIN, INT32_MAX),
    st.sampled_from([INT32_MIN, -1, 0, 1, INT32_MAX, 4097, 10_001, 1 << 20]),
)

HOSTILE_BOOLS = st.booleans()


def plausible_floats(
    low: float, high: float, *, exclude_low: bool = False, exclude_high: bool = False
) -> st.SearchStrategy[float]:
    """Within the bounds (which must be float32 values), as the wire carries
    them: float32."""
    return st.floats(low, high, width=32, exclude_min=exclude_low, exclude_max=exclude_high)


# Model names like "llama-lora" or "meta-llama/Llama-3.2-1B".
PLAUSIBLE_NAMES = _word(ALNUM, ALNUM + "._/-", 40)

PLAUSIBLE_PATHS = st.builds(
    lambda prefix, segments: prefix + "/".join(segments),
    st.sampled_from(ALLOWED_PATH_PREFIXES),
    st.lists(_word(ALNUM + "._-", ALNUM + "._-", 11), min_size=1, max_size=4),
)

# Free text a user might put in a template or a config: printable
# characters, some of them far from ASCII.
PLAUSIBLE_TEXTS = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=60)

PLAUSIBLE_QUANTITIES = st.one_of(
    st.just(""),
    st.builds(
        lambda whole, fraction, unit: whole + fraction + unit,
        st.text(alphabet="0123456789", min_size=1, max_size=4),
        st.sampled_from(["", ".5", ".25"]),
        st.sampled_from(["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"]),
    ),
)

PLAUSIBLE_MODULE_NAMES = st.one_of(
    st.sampled_from(["q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "dense", "fc1"]),
    _word(ALNUM[:52] + "_", ALNUM + "_.", 20),
)

PLAUSIBLE_REQUEST_IDS = st.one_of(
    st.just(""), _word(ALNUM + "._:-", ALNUM + "._:-", 39), st.uuids().map(str)
)

_LABEL_NAMES = _word(ALNUM, ALNUM + "-_.", 20, last=ALNUM)

PLAUSIBLE_LABEL_KEYS = st.one_of(
    _LABEL_NAMES,
    st.builds(
        lambda parts, name: ".".join(parts) + "/" + name,
        st.lists(
            _word(LOWER_ALNUM, LOWER_ALNUM + "-", 10, last=LOWER_ALNUM), min_size=1, max_size=3
        ),
        _LABEL_NAMES,
    ),
)

PLAUSIBLE_LABEL_VALUES = st.one_of(st.just(""), _LABEL_NAMES)

HOSTILE_LABEL_KEYS = st.one_of(st.sampled_from(ODD_LABEL_KEYS), HOSTILE_TEXTS, PLAUSIBLE_LABEL_KEYS)

HOSTILE_LABEL_VALUES = st.one_of(
    st.sampled_from(ODD_LABEL_VALUES), HOSTILE_TEXTS, PLAUSIBLE_LABEL_VALUES
)
