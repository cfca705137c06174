fn main() {
    println!("loader: skeleton");
}
