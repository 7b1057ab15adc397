//! The operation model behind the `array_ops` fuzz target: a byte string read as a sequence
//! of operations, applied to an `Array` (through two handles), a `RawArray` and a `Vec` model,
//! which must agree.
//! Public for the fuzz crate, hidden from the docs; not part of the API.

use crate::{Array, CopyError, IndexError, RawArray};

/// Reads `data` as: one byte of length (0..=63), then operations of 1 + 5 bytes (op, index
/// byte, 4-byte value). Panics if the arrays and the model ever disagree; never otherwise.
pub fn array_ops(data: &[u8]) {
    let Some((&len, mut rest)) = data.split_first() else {
        return;
    };
    let len = usize::from(len % 64);
    let locked = Array::<u32>::new(len);
    // A second handle to the same memory, as another `open` in this thread would give: every
    // write through it must be seen at once through the first one, guards included.
    let other = locked.second_handle();
    let raw = RawArray::<u32>::new(len);
    let mut model = vec![0u32; len];
    while let [op, idx, a, b, c, d, tail @ ..] = rest {
        rest = tail;
        let i = usize::from(*idx);
        let v = u32::from_le_bytes([*a, *b, *c, *d]);
        let oob = IndexError { index: i, len };
        match op % 8 {
            0 => {
                let want = model.get(i).copied().ok_or(oob);
                assert_eq!(locked.get(i), want);
                assert_eq!(raw.get(i), want);
            }
            1 => {
                let want = match model.get_mut(i) {
                    Some(x) => {
                        *x = v;
                        Ok(())
                    }
                    None => Err(oob),
                };
                let via = if v & 1 == 0 { &locked } else { &other };
                assert_eq!(via.set(i, v), want);
                assert_eq!(raw.set(i, v), want);
            }
            2 => {
                let want = match model.get_mut(i) {
                    Some(x) => {
                        let old = *x;
                        *x = x.wrapping_add(v);
                        Ok(old)
                    }
                    None => Err(oob),
                };
                assert_eq!(locked.fetch_add(i, v), want);
                assert_eq!(raw.fetch_add(i, v), want);
            }
            3 => {
                let want = match model.get_mut(i) {
                    Some(x) => {
                        let old = *x;
                        *x = (*x).max(v);
                        Ok(old)
                    }
                    None => Err(oob),
                };
                assert_eq!(locked.fetch_max(i, v), want);
                assert_eq!(raw.fetch_max(i, v), want);
            }
            4 => {
                // write_at(i, [v; n]) with n from the value's low bits.
                let n = (v % 8) as usize;
                let src = vec![v; n];
                let want = match i.checked_add(n).filter(|&e| e <= len) {
                    Some(end) => {
                        model[i..end].copy_from_slice(&src);
                        Ok(())
                    }
                    None => Err(CopyError::OutOfRange {
                        start: i,
                        end: i + n,
                        len,
                    }),
                };
                assert_eq!(locked.write_at(i, &src), want);
                assert_eq!(raw.write_at(i, &src), want);
            }
            5 => {
                let n = (v % 8) as usize;
                let want = match i.checked_add(n).filter(|&e| e <= len) {
                    Some(end) => Ok(model[i..end].to_vec()),
                    None => Err(CopyError::OutOfRange {
                        start: i,
                        end: i + n,
                        len,
                    }),
                };
                assert_eq!(locked.range_to_vec(i..i + n), want);
                assert_eq!(raw.range_to_vec(i..i + n), want);
            }
            6 => {
                // Whole-array copy of a slice of length i: a mismatch unless i == len.
                let src = vec![v; i];
                let want = if i == len {
                    model.copy_from_slice(&src);
                    Ok(())
                } else {
                    Err(CopyError::LengthMismatch {
                        expected: len,
                        found: i,
                    })
                };
                assert_eq!(locked.copy_from_slice(&src), want);
                assert_eq!(raw.copy_from_slice(&src), want);
            }
            _ => {
                // Under one guard: xor through `update` (on a copy), read it back by copy,
                // then xor it back through the second handle: the model does not change.
                let mut g = locked.lock().expect("no owner died on the heap");
                let hit = g.update(|s| match s.get_mut(i) {
                    Some(x) => {
                        *x ^= v;
                        true
                    }
                    None => false,
                });
                assert_eq!(hit, i < len);
                let want = model.get(i).map(|m| m ^ v).ok_or(oob);
                assert_eq!(g.get(i), want);
                assert_eq!(g.len(), len);
                // The second handle, in this thread, while the guard lives: the lock lets it
                // in (re-entrant), and the guard sees its write (it holds no reference).
                let back = other.fetch_xor(i, v);
                assert_eq!(back, want);
                assert_eq!(g.get(i), model.get(i).copied().ok_or(oob));
                drop(g);
            }
        }
        assert_eq!(locked.to_vec(), model);
        assert_eq!(raw.to_vec(), model);
    }
}
