//! What each ZCell/GX command will do, resolved once (by `commands::zcell`:
//! the command line over the config file over the defaults). Handlers take
//! these values and never look at the options again.

use std::path::PathBuf;

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use crate::exit::Failure;
use crate::zcell::bms::{BmsAddress, FetchOptions};
use crate::zcell::dess::{DessOptions, Writer};
use crate::zcell::gx::GxOptions;
use crate::zcell::policy::{OwnedSlots, Policy};

/// `run`: how it was asked to run, where to record it, and what it needs.
/// The record's path is known even when the rest could not be resolved, so
/// a broken config still leaves a record saying why.
pub struct RunRequest {
    pub mode: RunMode,
    pub status_file: PathBuf,
    pub settings: Result<RunSettings, Failure>,
    /// Where the run's record goes for Home Assistant, if anywhere.
    pub homeassistant: Option<crate::homeassistant::config::HaConfig>,
}

/// How `run` was asked to run.
pub struct RunMode {
    pub dry_run: bool,
    pub json: bool,
    pub skip_if_done: bool,
    pub now: Option<NaiveDateTime>,
}

/// Everything `run` needs to plan and write.
pub struct RunSettings {
    pub policy: Policy,
    pub bms: BmsAddress,
    pub fetch: FetchOptions,
    pub tz: Option<Tz>,
    pub lock_file: PathBuf,
    pub gx: GxOptions,
    pub writer: Writer,
    pub dess: DessOptions,
}

pub struct StatusSettings {
    pub owned: OwnedSlots,
    pub bms: Option<BmsAddress>,
    pub fetch: FetchOptions,
    pub tz: Option<Tz>,
    pub now: Option<NaiveDateTime>,
    pub status_file: PathBuf,
    pub json: bool,
    pub gx: GxOptions,
    pub writer: Writer,
}

pub struct DisableSettings {
    pub owned: OwnedSlots,
    pub lock_file: PathBuf,
    pub gx: GxOptions,
    pub writer: Writer,
}
