//! Load an `.ingot` file and predict on the rows of its reference sample.
//!
//! ```sh
//! cargo run -p ingot-ml --example predict -- examples/server/models/breast-cancer/1.0.0/model.ingot
//! ```

use std::sync::Arc;

fn main() -> Result<(), ingot::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/server/models/breast-cancer/1.0.0/model.ingot".into());
    let model = Arc::new(ingot::Model::load(&path)?);
    let card = model.metadata();
    println!("{} {} — {}", card.name, card.version, card.description.as_deref().unwrap_or(""));

    let sample = model.manifest().reference.as_ref().map(|r| r.sample.clone()).unwrap_or_default();
    let prediction = model.predict_records(&sample)?;
    for i in 0..prediction.rows {
        println!("row {i}: {}", serde_json::to_string(&prediction.row(i)).unwrap_or_default());
    }

    // The model is Send + Sync: share it between threads.
    let worker = {
        let model = Arc::clone(&model);
        std::thread::spawn(move || model.predict_records(&sample).map(|p| p.rows))
    };
    let rows =
        worker.join().map_err(|_| ingot::Error::Unsupported { what: "worker thread panicked".into() })??;
    println!("a second thread predicted {rows} rows with the same model");
    Ok(())
}
