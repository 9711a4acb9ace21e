//! The parquet dataset loader (`cwm_datasets::load` on a `.parquet` file). The first byte
//! picks the mode:
//! - 0: the rest is the file, as is;
//! - 1: instances built from the rest, written as the Hugging Face export lays them out
//!   (string columns, JSON-encoded test lists), must load back equal;
//! - 2: such a file with bytes changed (mostly in its footer) must load as a value;
//! - 3: a file with columns of other types (dates, timestamps, numbers, raw bytes) holding
//!   values from the rest must load as a value.
//!
//! The parquet crate panics on some corrupt files and the loader turns such a panic into an
//! error; libFuzzer's panic hook aborts at once, so panics raised inside the parquet crate
//! are let unwind to the loader here. Any other panic, or one that escapes `load`, is a crash.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Once};

use cwm_datasets::{load, Instance};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

static PATH: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("cwm-fuzz-dataset-{}.parquet", std::process::id()))
});

const STRINGS: [&str; 12] = [
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
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
];
const OPTIONAL: [&str; 4] = ["difficulty", "eval_script", "log_parser", "image"];

fn load_bytes(bytes: &[u8]) -> std::result::Result<Vec<Instance>, cwm_datasets::DatasetError> {
    if let Err(err) = std::fs::write(PATH.as_path(), bytes) {
        panic!("{}: {err}", PATH.display());
    }
    let result = load(&PATH);
    if let Err(err) = &result {
        let _ = err.to_string();
    }
    result
}

fn or_panic<T, E: std::fmt::Display>(result: std::result::Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("writing the parquet file: {err}"),
    }
}

fn instance(u: &mut Unstructured, index: usize) -> Result<Instance> {
    let optional = |u: &mut Unstructured| u.arbitrary::<Option<String>>();
    Ok(Instance {
        instance_id: format!("{}-{index}", u.arbitrary::<String>()?),
        repo: u.arbitrary()?,
        base_commit: u.arbitrary()?,
        patch: u.arbitrary()?,
        test_patch: u.arbitrary()?,
        problem_statement: u.arbitrary()?,
        hints_text: u.arbitrary()?,
        created_at: u.arbitrary()?,
        version: u.arbitrary()?,
        environment_setup_commit: u.arbitrary()?,
        fail_to_pass: u.arbitrary()?,
        pass_to_pass: u.arbitrary()?,
        difficulty: optional(u)?,
        eval_script: optional(u)?,
        log_parser: optional(u)?,
        image: optional(u)?,
        extra: [(
            "eval_type".to_string(),
            serde_json::Value::from(u.arbitrary::<String>()?),
        )]
        .into(),
    })
}

/// The instances in the export's layout, `group` rows per row group.
fn to_parquet(rows: &[Instance], group: usize) -> Vec<u8> {
    let mut schema = String::from("message schema {\n");
    for name in STRINGS {
        schema.push_str(&format!("REQUIRED BYTE_ARRAY {name} (UTF8);\n"));
    }
    for name in OPTIONAL {
        schema.push_str(&format!("OPTIONAL BYTE_ARRAY {name} (UTF8);\n"));
    }
    schema.push_str("REQUIRED BYTE_ARRAY eval_type (UTF8);\n}");
    let schema = Arc::new(or_panic(parse_message_type(&schema)));
    let mut out = Vec::new();
    let mut writer = or_panic(SerializedFileWriter::new(
        &mut out,
        schema,
        Arc::new(WriterProperties::default()),
    ));
    let names: Vec<&str> = STRINGS
        .iter()
        .chain(&OPTIONAL)
        .chain(&["eval_type"])
        .copied()
        .collect();
    for chunk in rows.chunks(group.max(1)) {
        let json: Vec<serde_json::Value> = chunk
            .iter()
            .map(|r| or_panic(serde_json::to_value(r)))
            .collect();
        let mut group_writer = or_panic(writer.next_row_group());
        let mut index = 0;
        while let Some(mut column) = or_panic(group_writer.next_column()) {
            let cells: Vec<Option<String>> = json
                .iter()
                .map(|row| match &row[names[index]] {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect();
            let values: Vec<ByteArray> = cells
                .iter()
                .flatten()
                .map(|s| ByteArray::from(s.as_str()))
                .collect();
            let levels: Vec<i16> = cells.iter().map(|c| i16::from(c.is_some())).collect();
            let optional = OPTIONAL.contains(&names[index]);
            or_panic(column.typed::<ByteArrayType>().write_batch(
                &values,
                optional.then_some(levels.as_slice()),
                None,
            ));
            or_panic(column.close());
            index += 1;
        }
        or_panic(group_writer.close());
    }
    or_panic(writer.close());
    out
}

fn rows(u: &mut Unstructured) -> Result<Vec<Instance>> {
    (0..u.int_in_range(0..=3)?)
        .map(|i| instance(u, i))
        .collect()
}

fn typed(u: &mut Unstructured) -> Result<Vec<u8>> {
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
    let n = u.int_in_range(1..=3)?;
    let mut out = Vec::new();
    let mut writer = or_panic(SerializedFileWriter::new(
        &mut out,
        Arc::new(or_panic(parse_message_type(schema))),
        Arc::new(WriterProperties::default()),
    ));
    let mut group = or_panic(writer.next_row_group());
    let mut index = 0;
    while let Some(mut column) = or_panic(group.next_column()) {
        let written = match index {
            0..=2 => {
                let values: Vec<ByteArray> = (0..n)
                    .map(|i| ByteArray::from(format!("c{index}-{i}").as_str()))
                    .collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, None, None)
            }
            3 | 6 => {
                let values: Vec<i32> = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
                column.typed::<Int32Type>().write_batch(&values, None, None)
            }
            4 | 5 => {
                let values: Vec<i64> = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
                column.typed::<Int64Type>().write_batch(&values, None, None)
            }
            7 => {
                let values: Vec<f64> = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
                column
                    .typed::<DoubleType>()
                    .write_batch(&values, None, None)
            }
            8 => {
                let values: Vec<bool> = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
                column.typed::<BoolType>().write_batch(&values, None, None)
            }
            _ => {
                let values: Vec<ByteArray> = (0..n)
                    .map(|_| u.arbitrary::<Vec<u8>>().map(ByteArray::from))
                    .collect::<Result<_>>()?;
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, None, None)
            }
        };
        or_panic(written);
        or_panic(column.close());
        index += 1;
    }
    or_panic(group.close());
    or_panic(writer.close());
    Ok(out)
}

fn run(mode: u8, u: &mut Unstructured) -> Result<()> {
    match mode {
        1 => {
            let rows = rows(u)?;
            let group = u.int_in_range(1..=3)?;
            match load_bytes(&to_parquet(&rows, group)) {
                Ok(back) => assert_eq!(back, rows),
                Err(err) => panic!("written rows do not load back: {err}"),
            }
        }
        2 => {
            let rows = rows(u)?;
            let mut bytes = to_parquet(&rows, 1);
            let footer_len = bytes
                .len()
                .checked_sub(8)
                .and_then(|at| bytes.get(at..at + 4))
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            let footer_start = bytes.len().saturating_sub(8 + footer_len);
            for _ in 0..u.int_in_range(1..=4)? {
                let at = if u.ratio(3, 4)? {
                    footer_start + u.choose_index(footer_len)?
                } else {
                    u.choose_index(bytes.len())?
                };
                bytes[at] = u.arbitrary()?;
            }
            let _ = load_bytes(&bytes);
        }
        _ => {
            let _ = load_bytes(&typed(u)?);
        }
    }
    Ok(())
}

static HOOK: Once = Once::new();

/// Lets panics raised in the parquet crate unwind (to the loader's `catch_unwind`).
fn contain_parquet_panics() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_parquet = info
            .location()
            .is_some_and(|l| l.file().contains("/parquet-"));
        if !in_parquet {
            abort(info);
        }
    }));
}

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(contain_parquet_panics);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let _ = load_bytes(rest);
        }
        mode => {
            let _ = run(mode, &mut Unstructured::new(rest));
        }
    }
});
