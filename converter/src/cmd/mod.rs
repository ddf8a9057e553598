pub mod check;
pub mod codecs;
pub mod inspect;
pub mod profiles;
