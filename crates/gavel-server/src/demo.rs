//! `--demo`: a few sample auctions ending within minutes, so a newcomer sees something live.

use gavel_core::{
    Auction, AuctionId, AuctionSpec, Currency, IncrementBand, IncrementPolicy, Money, SoftClose,
};
use gavel_engine::{Engine, EngineError};

fn m(v: i64) -> Money {
    Money::new(v).expect("demo amounts are valid")
}

pub async fn seed(engine: &dyn Engine) -> anyhow::Result<()> {
    let now = engine.now();
    // The live auctions ending last come last: one far enough in the future is enough.
    let mut after = None;
    loop {
        let page = engine.list_live(after, 100).await?;
        if page.iter().any(|a| a.state.ends_at > now) {
            return Ok(()); // Live auctions exist already.
        }
        match page.last() {
            Some(a) if page.len() == 100 => after = Some((a.state.ends_at, a.id.clone())),
            _ => break,
        }
    }
    let minute = 60_000;
    let usd = Currency::parse("USD")?;
    let specs = [
        AuctionSpec {
            title: "Vintage Leica M3 camera".into(),
            description: "1957 rangefinder, fully serviced, with a Summicron 50 mm lens.".into(),
            currency: usd,
            category: None,
            starting_price: m(50_000),
            increment: IncrementPolicy::Fixed { amount: m(1_000) },
            starts_at: now,
            ends_at: now + 5 * minute,
            reserve: None,
            buy_now: None,
            soft_close: Some(SoftClose {
                window_ms: 30_000,
                extend_ms: 30_000,
                max_extension_ms: Some(10 * minute),
            }),
        },
        AuctionSpec {
            title: "Signed first edition".into(),
            description: "A signed first edition in its original dust jacket.".into(),
            currency: usd,
            category: None,
            starting_price: m(10_000),
            increment: IncrementPolicy::Table {
                bands: vec![
                    IncrementBand {
                        from: 0,
                        increment: m(500),
                    },
                    IncrementBand {
                        from: 50_000,
                        increment: m(1_000),
                    },
                    IncrementBand {
                        from: 100_000,
                        increment: m(2_500),
                    },
                ],
            },
            starts_at: now,
            ends_at: now + 3 * minute,
            reserve: Some(m(40_000)),
            buy_now: Some(m(150_000)),
            soft_close: None,
        },
        AuctionSpec {
            title: "Mechanical keyboard".into(),
            description: "Hand-built, walnut case, tactile switches.".into(),
            currency: Currency::parse("EUR")?,
            category: None,
            starting_price: m(5_000),
            increment: IncrementPolicy::Fixed { amount: m(250) },
            starts_at: now,
            ends_at: now + 2 * minute,
            reserve: None,
            buy_now: Some(m(30_000)),
            soft_close: None,
        },
        AuctionSpec {
            title: "Weekend in a lighthouse".into(),
            description: "Two nights for two, opening soon.".into(),
            currency: usd,
            category: None,
            starting_price: m(20_000),
            increment: IncrementPolicy::Fixed { amount: m(1_000) },
            starts_at: now + minute,
            ends_at: now + 10 * minute,
            reserve: None,
            buy_now: None,
            soft_close: None,
        },
    ];
    for (i, spec) in specs.into_iter().enumerate() {
        let id = AuctionId::parse(format!("demo-{}-{}", now / 1000, i + 1))?;
        match engine.create_auction(Auction::new_at(id, spec, now)?).await {
            Ok(_) | Err(EngineError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!("demo auctions created");
    Ok(())
}
