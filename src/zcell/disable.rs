//! `zcell-sched disable`: the owned slots off, their days kept, e.g. before
//! uninstalling.

use crate::exit::{Exit, ExitContext, Failure};
use crate::lock;
use crate::log;
use crate::zcell::apply;
use crate::zcell::gx;
use crate::zcell::settings::DisableSettings;
use crate::zcell::slot::SlotIndex;

pub async fn disable(settings: DisableSettings) -> Result<(), Failure> {
    let _lock = lock::acquire(&settings.lock_file)?;
    let gx = gx::connect(&settings.gx).await.or_exit(Exit::Gx)?;
    let slots: Vec<SlotIndex> = settings.owned.iter().collect();
    let (_, changes) = apply::disable(&gx, &slots).await.or_exit(Exit::Gx)?;
    log(&format!(
        "slots {} disabled ({} writes)",
        settings.owned,
        changes.total()
    ));
    Ok(())
}
