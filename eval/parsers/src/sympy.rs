//! sympy's `bin/test -C --verbose`.

use std::sync::LazyLock;

use regex::Regex;

use super::{py_split, py_strip};
use crate::pytest::re;
use crate::status::{StatusMap, TestStatus};

/// Failure banners: `____ sympy/core/tests/test_numbers.py:test_x ____`.
static BANNER: LazyLock<Regex> = LazyLock::new(|| re(r"(_*) (.*)\.py:(.*) (_*)"));

/// `parse_log_sympy`. Only lines that end in ` ok`, ` F` or ` E` count, so the last test of
/// each file (whose line ends in the right-aligned `[OK]`/`[FAIL]`) is never recorded, as
/// upstream; banners add `path.py:test_x` keys as FAILED.
pub fn parse_log_sympy(log: &str) -> StatusMap {
    let mut map = StatusMap::new();
    for caps in BANNER.captures_iter(log) {
        let path = caps.get(2).map_or("", |m| m.as_str());
        let name = caps.get(3).map_or("", |m| m.as_str());
        map.insert(format!("{path}.py:{name}"), TestStatus::Failed);
    }
    for raw in log.split('\n') {
        let line = py_strip(raw);
        if !line.starts_with("test_") {
            continue;
        }
        let first = || {
            py_split(line)
                .first()
                .map(|w| w.to_string())
                .unwrap_or_default()
        };
        if line.ends_with(" E") {
            map.insert(first(), TestStatus::Error);
        }
        if line.ends_with(" F") {
            map.insert(first(), TestStatus::Failed);
        }
        if line.ends_with(" ok") {
            map.insert(first(), TestStatus::Passed);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(map: &'a StatusMap, id: &str) -> Option<&'a str> {
        map.get(id).map(|s| s.as_str())
    }

    const BIN_TEST: &str =
        "============================= test process starts ==============================
executable:         /usr/bin/python3  (3.11.2-final-0) [CPython]
architecture:       64-bit

minisym/core/tests/test_numbers.py[7] 
test_Rational_add ok
test_Rational_div F
test_issue_101 E
test_issue_107 F
test_Rational_hash ok
test_Rational_str ok                                                      [FAIL]


________________________________________________________________________________
_____________ minisym/core/tests/test_numbers.py:test_issue_101 ______________
Traceback (most recent call last):
ZeroDivisionError: division by zero
________________________________________________________________________________
_____________ minisym/core/tests/test_numbers.py:test_Rational_div ______________
AssertionError

=========== tests finished: 3 passed, 3 failed, 1 exceptions, in 0.01 seconds ===========
DO *NOT* COMMIT!";

    #[test]
    fn sympy_statuses_and_banners() {
        let map = parse_log_sympy(BIN_TEST);
        assert_eq!(get(&map, "test_Rational_add"), Some("PASSED"));
        assert_eq!(get(&map, "test_Rational_div"), Some("FAILED"));
        assert_eq!(get(&map, "test_issue_101"), Some("ERROR"));
        assert_eq!(get(&map, "test_issue_107"), Some("FAILED"));
        // The last test of the file ends in `[FAIL]`, so it is never listed.
        assert_eq!(get(&map, "test_Rational_str"), None);
        assert_eq!(
            get(&map, "minisym/core/tests/test_numbers.py:test_issue_101"),
            Some("FAILED")
        );
        assert_eq!(
            get(&map, "minisym/core/tests/test_numbers.py:test_Rational_div"),
            Some("FAILED")
        );
    }
}
