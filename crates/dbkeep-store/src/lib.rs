//! dbkeep's stores: where backup files live, on a local disk or in object storage (S3,
//! Azure, Google Cloud Storage), behind one small trait.

pub mod store;

pub use store::Store;
