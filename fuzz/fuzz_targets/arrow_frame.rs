//! Any bytes read as a Parquet file, each record batch taken as a frame and run through a
//! tabular model: the path of `ingot predict -i file.parquet`.
#![no_main]
use std::sync::OnceLock;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

static MODEL: OnceLock<ingot::Model> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let model = MODEL.get_or_init(|| {
        ingot::Model::from_bytes(ingot::testing::logistic_bundle().expect("bundle")).expect("model")
    });
    let Ok(builder) = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(data)) else { return };
    let Ok(reader) = builder.with_batch_size(64).build() else { return };
    for batch in reader.take(16) {
        let Ok(batch) = batch else { return };
        if let Ok(columns) = ingot::io::arrow::BatchColumns::new(&batch) {
            if let Ok(frame) = columns.frame() {
                let _ = model.predict(ingot::Input::Frame(&frame));
            }
        }
    }
});
