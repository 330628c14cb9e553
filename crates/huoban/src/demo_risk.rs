//! Adaptive security in the demo bank: the last-but-one demo customer has a large transfer
//! from a new phone held, waiting for their "was this you?" answer in the inbox; the last
//! one answered "no" to one, so their transfers are frozen and an open case waits for the
//! `risk` officer. (The first demo customers stay free for the tour and the tests.)

use anyhow::Context;
use huoban_accounts::{gate::RawContext, service::NewTransfer};
use huoban_ledger::{Amount, IdempotencyKey, TransferMeta, TransferRequest, Unit};
use uuid::Uuid;

use crate::app::App;

/// A year-end bonus, then ¥8,000 to savings from a phone never seen before.
async fn held_transfer(app: &App, customer: Uuid, n: u32) -> anyhow::Result<Uuid> {
    let accounts = app.accounts.ensure_standard_accounts(customer).await?;
    let clearing = app.accounts.clearing(Unit::Cny).await?;
    let key = IdempotencyKey::new("demo:risk", format!("bonus-{n}"))?;
    let bonus = TransferRequest::single(key, Unit::Cny, clearing, accounts.current, Amount::new(1_000_000)?).with_meta(
        TransferMeta {
            description: Some("年终奖 Year-end bonus".into()),
            merchant_category: Some("salary".into()),
            ..TransferMeta::default()
        },
    );
    app.ledger.transfer(bonus).await?;
    let (view, _) = app
        .accounts
        .transfer(
            customer,
            "app",
            &format!("demo-risk-held-{n}"),
            NewTransfer {
                from_account: accounts.current.as_uuid(),
                to_account: Some(accounts.savings.as_uuid()),
                to_phone: None,
                amount: 800_000,
                currency: "CNY".into(),
                description: Some("转入储蓄 To savings".into()),
                category: None,
            },
            RawContext {
                device_id: Some("demo-new-phone".into()),
                ..RawContext::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo held transfer: {e}"))?;
    Ok(view.id)
}

/// Leaves one held transfer (the last-but-one customer) and one open case (the last).
pub async fn seed(app: &App, customers: &[huoban_identity::store::CustomerRow]) -> anyhow::Result<()> {
    let n = customers.len();
    if !app.config.risk.transfer_checks || n < 8 {
        return Ok(());
    }
    let id = |i: usize| Uuid::parse_str(&customers[i].id).context("demo customer id");
    held_transfer(app, id(n - 2)?, 1).await?;
    let denied = held_transfer(app, id(n - 1)?, 2).await?;
    app.risk
        .deny(id(n - 1)?, denied)
        .await
        .map_err(|e| anyhow::anyhow!("demo denied hold: {e}"))?;
    Ok(())
}
