//! What every operation of one run shares: the resolved settings, where output goes, the cancel
//! flag, and the storages, each opened once (on first use) through one registry. Library
//! operations take a `&Session`; `cmd::Context` adds only how results are printed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::settings::Unknown;
use crate::config::Settings;
use crate::storage::{self, Storage, StorageContext, StorageError};
use crate::ui::Ui;

/// Why a storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The name is not a configured storage (a request error, or a record naming a storage the
    /// config no longer has).
    #[error(transparent)]
    Unknown(#[from] Unknown),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One run's shared state; see the module docs.
#[derive(Debug)]
pub struct Session {
    pub settings: Settings,
    pub ui: Ui,
    pub cancel: Arc<AtomicBool>,
    opened: Mutex<HashMap<String, Arc<dyn Storage>>>,
}

impl Session {
    /// A session over `settings`.
    pub fn new(settings: Settings, ui: Ui, cancel: Arc<AtomicBool>) -> Session {
        Session {
            settings,
            ui,
            cancel,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a signal asked the run to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The storage called `name`, opened on first use and shared afterwards. Opening sends no
    /// request.
    ///
    /// Fails when no storage has that name, or its client cannot be built.
    pub fn storage(&self, name: &str) -> Result<Arc<dyn Storage>, OpenError> {
        let st = self.settings.storage(name)?;
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = opened.get(name) {
            return Ok(Arc::clone(s));
        }
        let s: Arc<dyn Storage> = Arc::from(storage::open(
            st,
            &StorageContext::new(&self.settings, &self.ui),
        )?);
        opened.insert(name.to_string(), Arc::clone(&s));
        Ok(s)
    }

    /// Every index of the configured servers (or only `servers`, when not empty), read once.
    pub fn catalog(&self, servers: &[String]) -> crate::catalog::Catalog {
        crate::catalog::load(self, servers)
    }
}
