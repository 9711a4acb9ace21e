//! One module per subcommand, plus the flags they share.

pub mod bench;
pub mod bench_model;
pub mod bench_overhead;
pub mod clean;
pub mod dataset;
pub mod debugger_eval;
pub mod eval;
pub mod export;
pub mod grade;
pub mod images;
pub mod local_task;
pub mod prompts;
pub mod replay;
pub mod report;
pub mod repro;
pub mod run;
pub mod shared;
pub mod trace;
pub mod tts;
