//! The PDF standard security handler, for the one password every reader
//! tries: the empty user password. RC4 (V1/V2, R2/R3), AES-128 (V4, R4) and
//! AES-256 (V5, R5/R6).

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use md5::{Digest, Md5};
use rc4::{KeyInit, StreamCipher};
use sha2::{Sha256, Sha384, Sha512};

/// The padding string of Algorithm 2.
const PAD: [u8; 32] = [
    0x28, 0xbf, 0x4e, 0x5e, 0x4e, 0x75, 0x8a, 0x41, 0x64, 0x00, 0x4e, 0x56, 0xff, 0xfa, 0x01, 0x08,
    0x2e, 0x2e, 0x00, 0xb6, 0xd0, 0x68, 0x3e, 0x80, 0x2f, 0x0c, 0xa9, 0xfe, 0x64, 0x53, 0x69, 0x7a,
];

/// How strings and streams are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Identity,
    Rc4,
    Aes128,
    Aes256,
}

/// The values of an `/Encrypt` dictionary the handler needs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    pub v: i64,
    pub r: i64,
    pub length_bits: i64,
    pub o: Vec<u8>,
    pub u: Vec<u8>,
    pub ue: Vec<u8>,
    pub p: i64,
    pub id0: Vec<u8>,
    pub encrypt_metadata: bool,
    /// The crypt filter method for streams and strings (V4/V5), `None` for V1/V2.
    pub stm: Option<Method>,
    pub str_: Option<Method>,
}

/// A document opened with the empty user password.
#[derive(Debug, Clone)]
pub(crate) struct Crypt {
    key: Vec<u8>,
    stm: Method,
    str_: Method,
}

fn rc4(key: &[u8], data: &mut [u8]) {
    // rc4 0.1 needs a key length as a type; cover the lengths PDFs use (5..=16).
    macro_rules! run {
        ($n:ty) => {{
            let mut c = rc4::Rc4::<$n>::new(rc4::Key::<$n>::from_slice(key));
            c.apply_keystream(data);
        }};
    }
    use rc4::consts::*;
    match key.len() {
        5 => run!(U5),
        6 => run!(U6),
        7 => run!(U7),
        8 => run!(U8),
        9 => run!(U9),
        10 => run!(U10),
        11 => run!(U11),
        12 => run!(U12),
        13 => run!(U13),
        14 => run!(U14),
        15 => run!(U15),
        16 => run!(U16),
        _ => {}
    }
}

impl Crypt {
    /// Tries the empty user password. `Some` when it opens the document.
    pub(crate) fn open(p: &Params) -> Option<Crypt> {
        match p.v {
            1 | 2 => {
                let key = key_r2_4(p)?;
                check_user_r2_4(p, &key).then_some(Crypt {
                    key,
                    stm: Method::Rc4,
                    str_: Method::Rc4,
                })
            }
            4 => {
                let key = key_r2_4(p)?;
                check_user_r2_4(p, &key).then_some(Crypt {
                    key,
                    stm: p.stm.unwrap_or(Method::Identity),
                    str_: p.str_.unwrap_or(Method::Identity),
                })
            }
            5 => {
                let key = key_r5_6(p)?;
                Some(Crypt {
                    key,
                    stm: p.stm.unwrap_or(Method::Aes256),
                    str_: p.str_.unwrap_or(Method::Aes256),
                })
            }
            _ => None,
        }
    }

    /// Decrypts a string or stream of object `num gen`. Damaged AES data
    /// decrypts to nothing rather than failing.
    pub(crate) fn decrypt(&self, num: u32, gen: u16, data: &[u8], stream: bool) -> Vec<u8> {
        let m = if stream { self.stm } else { self.str_ };
        match m {
            Method::Identity => data.to_vec(),
            Method::Aes256 => aes_cbc_decrypt(&self.key, data),
            Method::Rc4 | Method::Aes128 => {
                let mut h = Md5::new();
                h.update(&self.key);
                h.update(&num.to_le_bytes()[..3]);
                h.update(gen.to_le_bytes());
                if m == Method::Aes128 {
                    h.update(b"sAlT");
                }
                let k = h.finalize();
                let k = &k[..(self.key.len() + 5).min(16)];
                if m == Method::Rc4 {
                    let mut out = data.to_vec();
                    rc4(k, &mut out);
                    out
                } else {
                    aes_cbc_decrypt(k, data)
                }
            }
        }
    }
}

/// AES-CBC with the IV in the first 16 bytes and PKCS#7 padding (removed when valid).
fn aes_cbc_decrypt(key: &[u8], data: &[u8]) -> Vec<u8> {
    if data.len() < 32 {
        return Vec::new();
    }
    let (iv, body) = data.split_at(16);
    let body = &body[..body.len() / 16 * 16];
    let mut buf = body.to_vec();
    let ok = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ())),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ())),
        _ => None,
    };
    if ok.is_none() {
        return Vec::new();
    }
    if let Some(&pad) = buf.last() {
        let pad = pad as usize;
        if (1..=16).contains(&pad)
            && buf.len() >= pad
            && buf[buf.len() - pad..].iter().all(|&b| b as usize == pad)
        {
            buf.truncate(buf.len() - pad);
        }
    }
    buf
}

/// Algorithm 2 with the empty password.
fn key_r2_4(p: &Params) -> Option<Vec<u8>> {
    let n = if p.r == 2 {
        5
    } else {
        let bits = match (p.length_bits, p.v) {
            (0, 4) => 128,
            (0, _) => 40,
            (b, _) => b,
        };
        if !(40..=128).contains(&bits) || bits % 8 != 0 {
            return None;
        }
        (bits / 8) as usize
    };
    if p.o.len() < 32 {
        return None;
    }
    let mut h = Md5::new();
    h.update(PAD);
    h.update(&p.o[..32]);
    h.update((p.p as i32).to_le_bytes());
    h.update(&p.id0);
    if p.r >= 4 && !p.encrypt_metadata {
        h.update([0xff; 4]);
    }
    let mut k = h.finalize().to_vec();
    if p.r >= 3 {
        for _ in 0..50 {
            k = Md5::digest(&k[..n]).to_vec();
        }
    }
    k.truncate(n);
    Some(k)
}

/// Algorithms 4/5: does the key reproduce `/U`?
fn check_user_r2_4(p: &Params, key: &[u8]) -> bool {
    if p.u.len() < 16 {
        return false;
    }
    if p.r == 2 {
        let mut x = PAD.to_vec();
        rc4(key, &mut x);
        return p.u.len() >= 32 && x[..] == p.u[..32];
    }
    let mut h = Md5::new();
    h.update(PAD);
    h.update(&p.id0);
    let mut x = h.finalize().to_vec();
    rc4(key, &mut x);
    for i in 1..=19u8 {
        let k: Vec<u8> = key.iter().map(|b| b ^ i).collect();
        rc4(&k, &mut x);
    }
    x[..16] == p.u[..16]
}

/// R5/R6: checks the empty password against `/U` and unwraps the file key from `/UE`.
fn key_r5_6(p: &Params) -> Option<Vec<u8>> {
    if p.u.len() < 48 || p.ue.len() < 32 {
        return None;
    }
    let (vsalt, ksalt) = (&p.u[32..40], &p.u[40..48]);
    if hash_r5_6(p.r, vsalt, &[])? != p.u[..32] {
        return None;
    }
    let k = hash_r5_6(p.r, ksalt, &[])?;
    let mut buf = p.ue[..32].to_vec();
    cbc::Decryptor::<aes::Aes256>::new_from_slices(&k, &[0u8; 16])
        .ok()?
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .ok()?;
    Some(buf)
}

/// SHA-256 (R5) or Algorithm 2.B (R6) of the empty password with `salt`.
fn hash_r5_6(r: i64, salt: &[u8], udata: &[u8]) -> Option<Vec<u8>> {
    let mut k = Sha256::new()
        .chain_update(salt)
        .chain_update(udata)
        .finalize()
        .to_vec();
    if r == 5 {
        return Some(k);
    }
    if r != 6 {
        return None;
    }
    let mut round = 0u32;
    loop {
        let mut k1 = Vec::with_capacity(64 * (k.len() + udata.len()));
        for _ in 0..64 {
            k1.extend_from_slice(&k);
            k1.extend_from_slice(udata);
        }
        let e = {
            let mut buf = k1;
            let len = buf.len();
            cbc::Encryptor::<aes::Aes128>::new_from_slices(&k[..16], &k[16..32])
                .ok()?
                .encrypt_padded_mut::<NoPadding>(&mut buf, len)
                .ok()?;
            buf
        };
        let m: u32 = e[..16].iter().map(|&b| u32::from(b)).sum::<u32>() % 3;
        k = match m {
            0 => Sha256::digest(&e).to_vec(),
            1 => Sha384::digest(&e).to_vec(),
            _ => Sha512::digest(&e).to_vec(),
        };
        round += 1;
        let last = u32::from(*e.last()?);
        if round >= 64 && last <= round - 32 {
            break;
        }
        if round > 10_000 {
            return None;
        }
    }
    k.truncate(32);
    Some(k)
}
