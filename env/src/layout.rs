//! Where things are inside a task container: the layout every SWE-bench image shares, and
//! that the fixture images copy. Defined once here; the crates above use these instead of
//! writing the paths out.

/// The repository root inside every task container: the working directory of containers
/// and of the bash session, where eval scripts `cd`, and what relative paths are relative
/// to. An absolute path.
pub const REPO_ROOT: &str = "/testbed";

/// The conda activation script of SWE-bench images (the fixture images carry a shim there,
/// see `cwm_datasets::fixtures::CONDA_SHIM`). Sourced when it exists, then
/// `conda activate` [`CONDA_ENV`].
pub const CONDA_ACTIVATE: &str = "/opt/miniconda3/bin/activate";

/// The conda environment holding the task's Python and dependencies in SWE-bench images.
pub const CONDA_ENV: &str = "testbed";

/// Debian's default `PATH`: what the fixture images set (`docker import` sets none) and
/// what a fresh exec in them sees. A `:`-separated list of absolute directories.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
