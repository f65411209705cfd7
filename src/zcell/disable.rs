//! `zcell-sched disable`: the owned slots off, their days kept (with
//! `--writer dess`, the owned Dynamic ESS windows removed first), e.g.
//! before uninstalling.

use crate::exit::{Exit, ExitContext, Failure};
use crate::lock;
use crate::log;
use crate::zcell::apply;
use crate::zcell::dess::{OWNED_COUNT, Writer};
use crate::zcell::gx;
use crate::zcell::settings::DisableSettings;
use crate::zcell::slot::SlotIndex;

pub async fn disable(settings: DisableSettings) -> Result<(), Failure> {
    let _lock = lock::acquire(&settings.lock_file)?;
    let gx = gx::connect(&settings.gx).await.or_exit(Exit::Gx)?;
    if settings.writer == Writer::Dess {
        let (_, changes) = gx::dess::remove(&gx).await.or_exit(Exit::Gx)?;
        log(&format!(
            "Dynamic ESS windows 0-{} removed ({} writes)",
            OWNED_COUNT - 1,
            changes.total()
        ));
    }
    let slots: Vec<SlotIndex> = settings.owned.iter().collect();
    let (_, changes) = apply::disable(&gx, &slots).await.or_exit(Exit::Gx)?;
    log(&format!(
        "slots {} disabled ({} writes)",
        settings.owned,
        changes.total()
    ));
    Ok(())
}
