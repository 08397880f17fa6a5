//! Hashes and HMACs: md5, sha1, sha224/256/384/512, sha3-224/256/384/512, blake3.
//!
//! Both return lower-case hexadecimal digests, as Lune's `serde.hash`/`serde.hmac` do.

use digest::Digest;
use hmac::{Mac, SimpleHmac};

const ALGORITHMS: &str =
    "md5, sha1, sha224, sha256, sha384, sha512, sha3-224, sha3-256, sha3-384, sha3-512, blake3";

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn unknown(name: &str) -> String {
    format!("invalid hash algorithm '{name}': expected one of {ALGORITHMS}")
}

/// The hex digest of `message` under `algorithm`.
pub fn hash(algorithm: &str, message: &[u8]) -> Result<String, String> {
    fn digest<D: Digest>(message: &[u8]) -> Vec<u8> {
        D::digest(message).to_vec()
    }
    let bytes = match algorithm {
        "md5" => digest::<md5::Md5>(message),
        "sha1" => digest::<sha1::Sha1>(message),
        "sha224" => digest::<sha2::Sha224>(message),
        "sha256" => digest::<sha2::Sha256>(message),
        "sha384" => digest::<sha2::Sha384>(message),
        "sha512" => digest::<sha2::Sha512>(message),
        "sha3-224" => digest::<sha3::Sha3_224>(message),
        "sha3-256" => digest::<sha3::Sha3_256>(message),
        "sha3-384" => digest::<sha3::Sha3_384>(message),
        "sha3-512" => digest::<sha3::Sha3_512>(message),
        "blake3" => blake3::hash(message).as_bytes().to_vec(),
        other => return Err(unknown(other)),
    };
    Ok(hex(&bytes))
}

/// The hex HMAC of `message` keyed with `secret` under `algorithm`.
pub fn hmac(algorithm: &str, message: &[u8], secret: &[u8]) -> Result<String, String> {
    fn mac<D: Digest + digest::core_api::BlockSizeUser>(message: &[u8], secret: &[u8]) -> Vec<u8> {
        let mut mac = <SimpleHmac<D> as Mac>::new_from_slice(secret)
            .expect("HMAC accepts keys of any length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    let bytes = match algorithm {
        "md5" => mac::<md5::Md5>(message, secret),
        "sha1" => mac::<sha1::Sha1>(message, secret),
        "sha224" => mac::<sha2::Sha224>(message, secret),
        "sha256" => mac::<sha2::Sha256>(message, secret),
        "sha384" => mac::<sha2::Sha384>(message, secret),
        "sha512" => mac::<sha2::Sha512>(message, secret),
        "sha3-224" => mac::<sha3::Sha3_224>(message, secret),
        "sha3-256" => mac::<sha3::Sha3_256>(message, secret),
        "sha3-384" => mac::<sha3::Sha3_384>(message, secret),
        "sha3-512" => mac::<sha3::Sha3_512>(message, secret),
        "blake3" => hmac_blake3(message, secret).to_vec(),
        other => return Err(unknown(other)),
    };
    Ok(hex(&bytes))
}

/// HMAC (RFC 2104) over blake3 with its 64-byte block, as Lune computes it (not
/// blake3's own keyed mode). Written out because the `blake3` crate's `digest`
/// traits are for another `digest` version than `hmac`'s.
fn hmac_blake3(message: &[u8], secret: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut key = [0u8; BLOCK];
    if secret.len() > BLOCK {
        key[..32].copy_from_slice(blake3::hash(secret).as_bytes());
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    let padded = |byte: u8| key.map(|k| k ^ byte);
    let mut inner = blake3::Hasher::new();
    inner.update(&padded(0x36));
    inner.update(message);
    let mut outer = blake3::Hasher::new();
    outer.update(&padded(0x5c));
    outer.update(inner.finalize().as_bytes());
    *outer.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hash("md5", b"").unwrap(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            hash("sha256", b"abc").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hmac(
                "sha256",
                b"The quick brown fox jumps over the lazy dog",
                b"key"
            )
            .unwrap(),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert!(hash("sha999", b"").unwrap_err().contains("sha3-256"));
    }

    #[test]
    fn hmac_blake3_is_the_hmac_construction() {
        // Lune's own test vector (tests/serde/hashing/hmac.luau in lune-org/lune).
        let message = b"important data to verify the integrity of";
        let secret = b"don't read this we operate on the honor system";
        assert_eq!(
            hmac("blake3", message, secret).unwrap(),
            "1d9c1b9405567fc565c2c3c6d6c0e170be72a2623d29911f43cb2ce42a373c01"
        );
        // A key longer than the block is hashed first, as for every HMAC: the
        // same result as the hashed key itself.
        let long = [7u8; 100];
        assert_eq!(
            hmac("blake3", message, &long).unwrap(),
            hmac("blake3", message, blake3::hash(&long).as_bytes()).unwrap()
        );
        // Not blake3's keyed mode with a hashed key (what Lunet did before).
        let keyed = blake3::keyed_hash(blake3::hash(secret).as_bytes(), message);
        assert_ne!(
            hmac("blake3", message, secret).unwrap(),
            hex(keyed.as_bytes())
        );
    }
}
