#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the dataset loaders (`load` on JSONL, JSON and parquet files): no file
//! makes them panic, a bad file is a `DatasetError` value, and rows written out (a JSONL
//! line, a JSON list or dict, a parquet row in the Hugging Face export's layout) load back
//! as the same instances.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cwm_datasets::{load, DatasetError, Instance};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "(?s).{0,40}", Just(String::new())]
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
        proptest::collection::vec(text(), 0..3).prop_map(serde_json::Value::from),
    ]
}

/// `n` instances with distinct ids; `extra` makes the unknown columns.
fn instances(
    extra: impl Strategy<Value = BTreeMap<String, serde_json::Value>>,
) -> impl Strategy<Value = Vec<Instance>> {
    let one = (
        (text(), text(), text(), text(), text(), text()),
        (text(), text(), text(), text()),
        (
            proptest::collection::vec(text(), 0..4),
            proptest::collection::vec(text(), 0..4),
        ),
        proptest::option::weighted(0.7, (text(), text(), text(), text())),
        extra,
    )
        .prop_map(
            |(
                (instance_id, repo, base_commit, patch, test_patch, problem_statement),
                (hints_text, created_at, version, environment_setup_commit),
                (fail_to_pass, pass_to_pass),
                optional,
                extra,
            )| {
                let (difficulty, eval_script, log_parser, image) = match optional {
                    Some((a, b, c, d)) => (Some(a), Some(b), Some(c), Some(d)),
                    None => (None, None, None, None),
                };
                Instance {
                    instance_id,
                    repo,
                    base_commit,
                    patch,
                    test_patch,
                    problem_statement,
                    hints_text,
                    created_at,
                    version,
                    environment_setup_commit,
                    fail_to_pass,
                    pass_to_pass,
                    difficulty,
                    eval_script,
                    log_parser,
                    image,
                    extra,
                }
            },
        );
    proptest::collection::vec(one, 0..5).prop_map(|mut rows| {
        for (i, row) in rows.iter_mut().enumerate() {
            row.instance_id = format!("{}-{i}", row.instance_id);
        }
        rows
    })
}

fn any_extra() -> impl Strategy<Value = BTreeMap<String, serde_json::Value>> {
    proptest::collection::btree_map("x_[a-z]{1,6}", json(), 0..3)
}

/// The unknown columns of a parquet file: the same in every row, strings.
fn parquet_extra() -> impl Strategy<Value = BTreeMap<String, serde_json::Value>> {
    (text(), text()).prop_map(|(a, b)| {
        BTreeMap::from([
            ("eval_type".to_string(), a.into()),
            ("x_note".to_string(), b.into()),
        ])
    })
}

/// Writes `bytes` as `name` in a fresh directory and loads it: a value either way.
fn load_bytes(name: &str, bytes: &[u8]) -> Result<Vec<Instance>, DatasetError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let result = load(&path);
    if let Err(err) = &result {
        assert!(!err.to_string().is_empty());
    }
    result
}

const STRING_COLUMNS: [&str; 10] = [
    "instance_id",
    "repo",
    "base_commit",
    "patch",
    "test_patch",
    "problem_statement",
    "hints_text",
    "created_at",
    "version",
    "environment_setup_commit",
];
const OPTIONAL_COLUMNS: [&str; 4] = ["difficulty", "eval_script", "log_parser", "image"];

/// The instances as a parquet file in the Hugging Face export's layout: every column a
/// string, the test lists JSON-encoded, one row group per `group` rows.
fn to_parquet(rows: &[Instance], group: usize) -> Vec<u8> {
    let mut schema = String::from("message schema {\n");
    for name in STRING_COLUMNS
        .iter()
        .chain(&["FAIL_TO_PASS", "PASS_TO_PASS"])
    {
        schema.push_str(&format!("REQUIRED BYTE_ARRAY {name} (UTF8);\n"));
    }
    for name in OPTIONAL_COLUMNS {
        schema.push_str(&format!("OPTIONAL BYTE_ARRAY {name} (UTF8);\n"));
    }
    schema.push_str("REQUIRED BYTE_ARRAY eval_type (UTF8);\nREQUIRED BYTE_ARRAY x_note (UTF8);\n}");
    let schema = Arc::new(parse_message_type(&schema).unwrap());
    let mut out = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut out, schema, Arc::new(WriterProperties::default())).unwrap();
    for chunk in rows.chunks(group.max(1)) {
        let mut columns: Vec<Vec<Option<String>>> = Vec::new();
        let value = |row: &Instance, name: &str| {
            let json = serde_json::to_value(row).unwrap();
            match &json[name] {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        for name in STRING_COLUMNS
            .iter()
            .chain(&["FAIL_TO_PASS", "PASS_TO_PASS"])
            .chain(&OPTIONAL_COLUMNS)
            .chain(&["eval_type", "x_note"])
        {
            columns.push(chunk.iter().map(|row| value(row, name)).collect());
        }
        let mut group_writer = writer.next_row_group().unwrap();
        let mut index = 0;
        while let Some(mut column) = group_writer.next_column().unwrap() {
            let cells = &columns[index];
            let values: Vec<ByteArray> = cells
                .iter()
                .flatten()
                .map(|s| ByteArray::from(s.as_str()))
                .collect();
            let levels: Vec<i16> = cells.iter().map(|c| i16::from(c.is_some())).collect();
            let optional = index >= STRING_COLUMNS.len() + 2 && index < STRING_COLUMNS.len() + 6;
            column
                .typed::<ByteArrayType>()
                .write_batch(&values, optional.then_some(levels.as_slice()), None)
                .unwrap();
            column.close().unwrap();
            index += 1;
        }
        group_writer.close().unwrap();
    }
    writer.close().unwrap();
    out
}

/// One valid row plus columns of the physical and logical types parquet can hold, with
/// arbitrary values: none of them may make the loader panic.
#[derive(Debug, Clone)]
struct TypedRow {
    date: i32,
    millis: i64,
    micros: i64,
    int: i32,
    double: f64,
    flag: bool,
    bytes: Vec<u8>,
}

fn typed_parquet(rows: &[TypedRow]) -> Vec<u8> {
    let schema = "message schema {
        REQUIRED BYTE_ARRAY instance_id (UTF8);
        REQUIRED BYTE_ARRAY repo (UTF8);
        REQUIRED BYTE_ARRAY base_commit (UTF8);
        REQUIRED INT32 x_date (DATE);
        REQUIRED INT64 created_at (TIMESTAMP_MILLIS);
        REQUIRED INT64 x_micros (TIMESTAMP_MICROS);
        REQUIRED INT32 x_int;
        REQUIRED DOUBLE x_double;
        REQUIRED BOOLEAN x_flag;
        REQUIRED BYTE_ARRAY x_bytes;
    }";
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let mut out = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut out, schema, Arc::new(WriterProperties::default())).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut index = 0;
    while let Some(mut column) = group.next_column().unwrap() {
        match index {
            0..=2 => {
                let values: Vec<ByteArray> = (0..rows.len())
                    .map(|i| ByteArray::from(format!("c{index}-{i}").as_str()))
                    .collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, None, None)
            }
            3 => {
                let values: Vec<i32> = rows.iter().map(|r| r.date).collect();
                column.typed::<Int32Type>().write_batch(&values, None, None)
            }
            4 | 5 => {
                let values: Vec<i64> = rows
                    .iter()
                    .map(|r| if index == 4 { r.millis } else { r.micros })
                    .collect();
                column.typed::<Int64Type>().write_batch(&values, None, None)
            }
            6 => {
                let values: Vec<i32> = rows.iter().map(|r| r.int).collect();
                column.typed::<Int32Type>().write_batch(&values, None, None)
            }
            7 => {
                let values: Vec<f64> = rows.iter().map(|r| r.double).collect();
                column
                    .typed::<DoubleType>()
                    .write_batch(&values, None, None)
            }
            8 => {
                let values: Vec<bool> = rows.iter().map(|r| r.flag).collect();
                column.typed::<BoolType>().write_batch(&values, None, None)
            }
            _ => {
                let values: Vec<ByteArray> = rows
                    .iter()
                    .map(|r| ByteArray::from(r.bytes.clone()))
                    .collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, None, None)
            }
        }
        .unwrap();
        column.close().unwrap();
        index += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
    out
}

fn typed_row() -> impl Strategy<Value = TypedRow> {
    (
        prop_oneof![any::<i32>(), -800_000..800_000i32],
        prop_oneof![any::<i64>(), 0..4_000_000_000_000i64],
        any::<i64>(),
        any::<i32>(),
        any::<f64>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(
            |(date, millis, micros, int, double, flag, bytes)| TypedRow {
                date,
                millis,
                micros,
                int,
                double,
                flag,
                bytes,
            },
        )
}

/// A valid JSONL row with one field replaced by another JSON value, or removed.
fn near_valid_jsonl() -> impl Strategy<Value = Vec<u8>> {
    let fields = [
        "instance_id",
        "repo",
        "base_commit",
        "patch",
        "version",
        "hints_text",
        "FAIL_TO_PASS",
        "PASS_TO_PASS",
        "difficulty",
        "image",
    ];
    let mutated = (
        instances(any_extra()),
        proptest::sample::select(fields.to_vec()),
        proptest::option::of(prop_oneof![
            json(),
            any::<f64>().prop_map(serde_json::Value::from),
            Just(serde_json::json!({"a": [1, {"b": null}]})),
            Just(serde_json::Value::from("[\"t\"")),
            Just(serde_json::Value::from("[1, 2]")),
        ]),
    )
        .prop_map(|(rows, field, value)| {
            rows.iter()
                .map(|row| {
                    let mut json = serde_json::to_value(row).unwrap();
                    let object = json.as_object_mut().unwrap();
                    match &value {
                        Some(v) => object.insert(field.to_string(), v.clone()),
                        None => object.remove(field),
                    };
                    json.to_string()
                })
                .collect::<Vec<_>>()
        });
    let junk = proptest::collection::vec(
        prop_oneof![
            Just(String::new()),
            Just("{".to_string()),
            Just("[]".to_string()),
            Just("null".to_string()),
            Just("{\"instance_id\": 1}".to_string()),
            ".{0,12}",
        ],
        0..3,
    );
    (mutated, junk, any::<bool>()).prop_map(|(mut lines, junk, crlf)| {
        lines.extend(junk);
        let eol = if crlf { "\r\n" } else { "\n" };
        lines.join(eol).into_bytes()
    })
}

/// A valid parquet file with some bytes changed, and perhaps cut short.
fn near_valid_parquet() -> impl Strategy<Value = Vec<u8>> {
    (
        instances(parquet_extra()),
        1..3usize,
        proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
        proptest::option::weighted(0.2, any::<proptest::sample::Index>()),
        any::<bool>(),
    )
        .prop_map(|(rows, group, changes, cut, in_footer)| {
            let mut bytes = to_parquet(&rows, group);
            // The footer (the file's metadata, before its length and `PAR1`) is where most
            // of what the reader trusts lives.
            let footer_len =
                u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap())
                    as usize;
            let footer_start = bytes.len() - 8 - footer_len;
            for (at, value) in changes {
                let at = if in_footer {
                    footer_start + at.index(footer_len)
                } else {
                    at.index(bytes.len())
                };
                bytes[at] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

fn sorted(mut rows: Vec<Instance>) -> Vec<Instance> {
    rows.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    rows
}

proptest! {
    #[test]
    fn any_bytes_load_or_fail_in_every_format(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for name in ["d.jsonl", "d.json", "d.parquet"] {
            let _ = load_bytes(name, &bytes);
        }
    }

    #[test]
    fn any_text_loads_or_fails_as_json(text in any::<String>()) {
        for name in ["d.jsonl", "d.json"] {
            let _ = load_bytes(name, text.as_bytes());
        }
    }

    #[test]
    fn near_valid_jsonl_loads_or_fails(bytes in near_valid_jsonl()) {
        let _ = load_bytes("d.jsonl", &bytes);
        // The same rows as a JSON list.
        let text = String::from_utf8(bytes).unwrap();
        let list = format!("[{}]", text.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join(","));
        let _ = load_bytes("d.json", list.as_bytes());
    }

    #[test]
    fn near_valid_parquet_loads_or_fails(bytes in near_valid_parquet()) {
        let _ = load_bytes("d.parquet", &bytes);
    }

    #[test]
    fn parquet_columns_of_any_type_load_or_fail(rows in proptest::collection::vec(typed_row(), 1..4)) {
        let _ = load_bytes("d.parquet", &typed_parquet(&rows));
    }

    #[test]
    fn jsonl_rows_load_back_equal(rows in instances(any_extra())) {
        let text: String = rows.iter().map(|r| format!("{}\n", serde_json::to_string(r).unwrap())).collect();
        prop_assert_eq!(load_bytes("d.jsonl", text.as_bytes()).unwrap(), rows.clone());
        let list = serde_json::to_string(&rows).unwrap();
        prop_assert_eq!(load_bytes("d.json", list.as_bytes()).unwrap(), rows.clone());
        // A dict keyed by instance id, without the id in the rows.
        let dict: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut json = serde_json::to_value(r).unwrap();
                json.as_object_mut().unwrap().remove("instance_id");
                (r.instance_id.clone(), json)
            })
            .collect();
        let dict = serde_json::Value::Object(dict).to_string();
        prop_assert_eq!(sorted(load_bytes("d.json", dict.as_bytes()).unwrap()), sorted(rows));
    }

    #[test]
    fn parquet_rows_load_back_equal(rows in instances(parquet_extra()), group in 1..4usize) {
        let bytes = to_parquet(&rows, group);
        prop_assert_eq!(load_bytes("d.parquet", &bytes).unwrap(), rows);
    }

    #[test]
    fn a_repeated_id_is_an_error(rows in instances(any_extra())) {
        prop_assume!(!rows.is_empty());
        let mut rows = rows;
        rows.push(rows[0].clone());
        let text: String = rows.iter().map(|r| format!("{}\n", serde_json::to_string(r).unwrap())).collect();
        let err = load_bytes("d.jsonl", text.as_bytes()).unwrap_err();
        prop_assert!(err.to_string().contains("duplicate instance id"), "{}", err);
    }
}

#[test]
fn a_file_without_a_known_extension_is_refused() {
    let err = load_bytes("d.csv", b"a,b\n").unwrap_err();
    assert!(matches!(err, DatasetError::UnknownFormat(_)), "{err}");
    assert!(load(Path::new("/nonexistent/d.jsonl")).is_err());
}

/// Found by `benches/fuzz.sh` (dataset_parquet): the parquet crate panics on these files
/// (a date outside chrono's range; a column chunk whose footer entry has a negative size;
/// a dictionary-encoded page without a dictionary page). The loader returns an error.
/// The files are the fuzz target's seeds (after their mode byte).
#[test]
fn files_the_parquet_crate_panics_on_are_errors() {
    let row = TypedRow {
        date: i32::MAX,
        millis: 0,
        micros: 0,
        int: 0,
        double: 0.0,
        flag: false,
        bytes: Vec::new(),
    };
    let err = load_bytes("d.parquet", &typed_parquet(std::slice::from_ref(&row))).unwrap_err();
    assert!(matches!(err, DatasetError::Parquet { .. }), "{err}");
    for (millis, micros) in [(i64::MIN, 0), (0, i64::MAX)] {
        let row = TypedRow {
            date: 0,
            millis,
            micros,
            ..row.clone()
        };
        assert!(load_bytes("d.parquet", &typed_parquet(&[row])).is_err());
    }
    let crashes: [&[u8]; 2] = [
        include_bytes!("../../fuzz/seeds/dataset_parquet/crash-negative-column-chunk"),
        include_bytes!("../../fuzz/seeds/dataset_parquet/crash-dictionary-page-missing"),
    ];
    for file in crashes {
        let err = load_bytes("d.parquet", &file[1..]).unwrap_err();
        assert!(matches!(err, DatasetError::Parquet { .. }), "{err}");
    }
}

/// A footer that claims 2^40 rows: the loader must not size a buffer from it (it did, and
/// the allocation failure aborted the process).
#[test]
fn a_huge_row_count_is_not_trusted() {
    let rows: Vec<Instance> = (0..3)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "instance_id": format!("a-{i}"), "repo": "r", "base_commit": "c",
                "eval_type": "", "x_note": "",
            }))
            .unwrap()
        })
        .collect();
    let mut bytes = to_parquet(&rows, 3);
    let len = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    let footer = len - 8 - footer_len..len - 8;
    // FileMetaData field 3 (num_rows, i64) follows the schema list's last struct stop byte:
    // header 0x16, then the zigzag varint 6 (3 rows). Zigzag 2^41 is 2^40.
    let at = bytes[footer.clone()]
        .windows(3)
        .position(|w| w == [0x00, 0x16, 0x06])
        .map(|i| footer.start + i + 2)
        .unwrap();
    bytes.splice(at..at + 1, [0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    let len = bytes.len();
    bytes[len - 8..len - 4].copy_from_slice(&(footer_len as u32 + 5).to_le_bytes());
    // The row groups carry their own counts: the rows load.
    assert_eq!(load_bytes("d.parquet", &bytes).unwrap(), rows);
}
