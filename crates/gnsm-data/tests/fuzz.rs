//! Property tests: random bytes never panic the reader; random well-formed tables encode and
//! decode back to their values.

use gnsm_data::{CsvOptions, Schema, SchemaOptions, Table};
use proptest::prelude::{prop_assert, prop_assert_eq, proptest, ProptestConfig};
use proptest::strategy::Strategy;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        if let Ok(table) = Table::from_reader(&bytes[..], "fuzz.csv", &CsvOptions::default()) {
            if let Ok(mut schema) = Schema::infer(&table, &SchemaOptions::default()) {
                let rows: Vec<usize> = (0..table.rows()).collect();
                if schema.fit(&table, &rows).is_ok() {
                    let _ = schema.encode(&table);
                }
            }
        }
    }

    #[test]
    fn encode_decode_is_identity_on_known_values(
        cells in proptest::collection::vec(
            proptest::collection::vec("[a-z0-9 ?]{0,4}", 3),
            2..40,
        ),
        numbers in proptest::collection::vec((-1000i32..1000).prop_map(|v| f64::from(v) / 8.0), 40),
    ) {
        let mut text = String::from("c0,c1,c2,num\n");
        for (row, number) in cells.iter().zip(&numbers) {
            text.push_str(&format!("{},{},{},{number}\n", row[0], row[1], row[2]));
        }
        let table = Table::from_reader(text.as_bytes(), "gen.csv", &CsvOptions::default()).unwrap();
        // Random cells may all differ: declared categorical, they pass the identifier check.
        let categorical = vec!["c0".into(), "c1".into(), "c2".into()];
        let options = SchemaOptions { continuous: vec!["num".into()], categorical, missing_values: vec![], ..Default::default() };
        let mut schema = Schema::infer(&table, &options).unwrap();
        let rows: Vec<usize> = (0..table.rows()).collect();
        if schema.fit(&table, &rows).is_err() {
            // Only a single-category column can fail; every column here has an unseen slot.
            prop_assert!(false, "fit failed");
        }
        let encoded = schema.encode(&table).unwrap();
        for (r, row) in cells.iter().enumerate() {
            let decoded = schema.decode_row(encoded.row(r)).unwrap();
            // Continuous values survive to f32 precision; categories exactly.
            let back = decoded[0].parse::<f64>().unwrap();
            prop_assert!((back - numbers[r]).abs() <= 1e-5 * (1.0 + numbers[r].abs()), "{} vs {}", back, numbers[r]);
            prop_assert_eq!(&decoded[1..], &row[..]);
        }
    }
}
