fn main() {
    for crd in hygie::api::crds() {
        println!("---\n{}", serde_saphyr::to_string(&crd).unwrap());
    }
}
