//! Password hashing with Argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Each hash costs ~15 ms of a core and 19 MiB of memory, so hashing runs on a fixed number of
//! threads of its own (never on the async workers), each with one reusable 19 MiB block
//! buffer. A flood of sign-in attempts queues for those threads, and memory stays at
//! `limit` × 19 MiB: allocating a buffer per hash instead let glibc keep the freed buffers in
//! its heaps, close to 1 GB under load (docs/performance.md, W6).

use std::sync::{Arc, mpsc};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use super::secret::{self, SecretString};

/// Shortest and longest accepted passwords. The upper bound keeps a single hash cheap.
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 128;

/// Verified against when the login matches no account, so that an unknown username costs a
/// full Argon2id verification at our parameters, like a wrong password, and timing cannot
/// tell them apart. It guards nothing: its salt is fixed, its password is in the tests below,
/// and [`PasswordHasher::verify`] answers `false` without an account whatever it computes.
/// A constant so that starting the server does not spend a hash (and 19 MiB) on it.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZG9vcndhcmQtZHVtbXktc2FsdA$utp8uLI+HXnKj3JM0dh0GWXQp1b5dHWgSp4FvH98jyE";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("is too short (minimum is {MIN_PASSWORD_LEN} characters)")]
    TooShort,
    #[error("is too long (maximum is {MAX_PASSWORD_LEN} characters)")]
    TooLong,
    #[error("password hashing failed")]
    Hashing,
}

/// Checks a new password against the length rules.
pub fn validate_new_password(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(PasswordError::TooShort)
    } else if len > MAX_PASSWORD_LEN {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

/// OWASP Password Storage Cheat Sheet: Argon2id, 19 MiB, 2 iterations, 1 lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

/// A zeroed buffer of `blocks` Argon2 blocks, or `None` when the memory is not there (a
/// stored hash may ask for any amount: failing that verification beats aborting).
fn allocate(blocks: usize) -> Option<Box<[Block]>> {
    let mut memory = Vec::new();
    memory.try_reserve_exact(blocks).ok()?;
    memory.resize(blocks, Block::new());
    Some(memory.into_boxed_slice())
}

/// Hashes `password` with `salt` at our parameters, using `memory` (at least
/// `params().block_count()` blocks; its previous contents do not matter), into a PHC string.
fn hash_with_salt(
    password: &[u8],
    salt: &[u8],
    memory: &mut [Block],
) -> Result<String, PasswordError> {
    let params = params();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, memory)
        .map_err(|_| PasswordError::Hashing)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| PasswordError::Hashing)?,
        salt: Some(Salt::new(salt).map_err(|_| PasswordError::Hashing)?),
        hash: Some(Output::new(&out).map_err(|_| PasswordError::Hashing)?),
    };
    Ok(phc.to_string())
}

/// Hashes `password` with a fresh random salt into `memory`.
fn hash_in(password: &str, memory: &mut [Block]) -> Result<String, PasswordError> {
    hash_with_salt(password.as_bytes(), &secret::random_bytes::<16>(), memory)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`). Blocking, and
/// allocates its own 19 MiB: for one-off hashes outside a [`PasswordHasher`] (the `root`
/// password at first start), not for request paths.
pub fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let mut memory = allocate(params().block_count()).ok_or(PasswordError::Hashing)?;
    hash_in(password, &mut memory)
}

/// A stored PHC string, parsed: the Argon2 its own algorithm, version and parameters
/// describe (hashes made with other parameters keep verifying), its salt and its output.
struct StoredHash {
    argon2: Argon2<'static>,
    salt: Salt,
    expected: Output,
}

impl StoredHash {
    fn parse(phc: &str) -> Option<StoredHash> {
        let hash = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::new(hash.algorithm.as_str()).ok()?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).ok()?;
        Some(StoredHash {
            argon2: Argon2::new(algorithm, version, params),
            salt: hash.salt?,
            expected: hash.hash?,
        })
    }

    fn blocks_needed(&self) -> usize {
        self.argon2.params().block_count()
    }

    /// Recomputes the hash of `password` in `memory` and compares in constant time.
    fn matches(&self, password: &[u8], memory: &mut [Block]) -> bool {
        let mut buf = [0u8; Output::MAX_LENGTH];
        let Some(out) = buf.get_mut(..self.expected.len()) else {
            return false;
        };
        self.argon2
            .hash_password_into_with_memory(password, &self.salt, out, memory)
            .is_ok()
            && secret::constant_time_eq(out, self.expected.as_bytes())
    }
}

/// Checks `password` against a PHC string, hashing in `memory` when it is big enough (Argon2
/// uses only the blocks it needs) and in a buffer of its own when the hash was made with
/// more memory than ours (such hashes are rare: older or imported parameters).
fn verify_in(password: &str, phc: &str, memory: &mut [Block]) -> bool {
    if is_bcrypt(phc) {
        // Devise's bcrypt, imported from GitLab (issue 16): verified once, then replaced by
        // Argon2id at the first success ([`needs_rehash`]). The crate refuses malformed
        // hashes; a wrong password and an error are both "no".
        return bcrypt::verify(password, phc).unwrap_or(false);
    }
    let Some(stored) = StoredHash::parse(phc) else {
        return false;
    };
    let needed = stored.blocks_needed();
    if needed <= memory.len() {
        stored.matches(password.as_bytes(), memory)
    } else {
        allocate(needed).is_some_and(|mut own| stored.matches(password.as_bytes(), &mut own))
    }
}

/// Devise's bcrypt hashes, in each of the prefixes Ruby's and other bcrypts wrote.
fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

/// True when a hash that just verified should be replaced by one at our parameters: an
/// imported bcrypt hash, or Argon2 made with other parameters.
pub fn needs_rehash(stored: &str) -> bool {
    if is_bcrypt(stored) {
        return true;
    }
    match PasswordHash::new(stored) {
        Ok(hash) => {
            let ours = params();
            hash.algorithm != Algorithm::Argon2id.ident()
                || Params::try_from(&hash).ok().is_none_or(|p| {
                    (p.m_cost(), p.t_cost(), p.p_cost())
                        != (ours.m_cost(), ours.t_cost(), ours.p_cost())
                })
        }
        Err(_) => false,
    }
}

/// One piece of hashing work, run on a hashing thread with that thread's block buffer.
type HashJob = Box<dyn FnOnce(&mut [Block]) + Send>;

/// Runs password hashes on `limit` threads of its own, each with one 19 MiB block buffer
/// that it makes at its first hash and keeps. The threads take their work from one queue,
/// so a thread that finishes a hash starts the next queued one at once: with hashes handed
/// out through a semaphore and tokio's blocking pool, every hash began only after the
/// waiting request's task had been woken on an async worker and had woken a blocking
/// thread in turn, and the cores idled 4 % of W6 (docs/performance.md, "W6: hashing
/// threads"). The threads end when the last clone of the hasher is dropped.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<HashJob>,
    imported_checks: Arc<Semaphore>,
}

impl PasswordHasher {
    /// Starts `limit` (at least one) hashing threads.
    pub fn new(limit: usize) -> std::io::Result<PasswordHasher> {
        let jobs = crate::job_threads::spawn("doorward-hash", limit, || {
            let mut memory: Option<Box<[Block]>> = None;
            move |job: HashJob| {
                // Made at the first job; should the memory not be there, the job gets an
                // empty buffer, in which Argon2 fails (a hash is an error, a verification a
                // "no") instead of the thread aborting.
                if memory.is_none() {
                    memory = allocate(params().block_count());
                }
                job(memory.as_deref_mut().unwrap_or_default());
            }
        })?;
        Ok(PasswordHasher {
            jobs,
            imported_checks: Arc::new(Semaphore::new(1)),
        })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let password = password.clone();
        self.run(move |memory| hash_in(password.expose(), memory))
            .await
    }

    /// `true` when `password` matches `phc`. With no stored hash (unknown user) it still
    /// spends one verification, against [`DUMMY_HASH`], and answers `false`.
    pub async fn verify(&self, password: &SecretString, phc: Option<&str>) -> bool {
        let real = phc.is_some();
        let phc = phc.unwrap_or(DUMMY_HASH).to_owned();
        let password = password.clone();
        let ok = self
            .run(move |memory| Ok(verify_in(password.expose(), &phc, memory)))
            .await;
        real && ok.unwrap_or(false)
    }

    /// Runs the PBKDF2 of a presented value against credentials imported from GitLab
    /// (issue 16) on the blocking pool, one at a time under a permit of its own: anyone can
    /// present such a value, and a flood of them must queue among themselves, not hold up
    /// sign-ins.
    pub async fn run_imported_check<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = self
            .imported_checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Hashing)?;
        // The permit moves into the blocking task, so it is released when the work ends,
        // even if the request that asked for it was dropped meanwhile.
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|_| PasswordError::Hashing)
    }

    /// Queues `work` for the hashing threads and waits for its result. A request that goes
    /// away while its work is still queued (a client that hung up) costs no hash.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (answer, result) = oneshot::channel();
        let job: HashJob = Box::new(move |memory| {
            if !answer.is_closed() {
                let _ = answer.send(work(memory));
            }
        });
        self.jobs.send(job).map_err(|_| PasswordError::Hashing)?;
        result.await.map_err(|_| PasswordError::Hashing)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use argon2::{CustomizedPasswordHasher as _, PasswordHasher as _};

    /// The password [`DUMMY_HASH`] was made from, with the salt `doorward-dummy-salt`.
    const DUMMY_PASSWORD: &str = "doorward-dummy-password";

    fn pool_buffer() -> Box<[Block]> {
        allocate(params().block_count()).unwrap()
    }

    #[test]
    fn imported_bcrypt_hashes_verify_in_every_prefix_and_ask_for_a_rehash() {
        let mut memory = pool_buffer();
        let made = bcrypt::hash_with_result("fixture-password", 4).unwrap();
        for version in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let stored = made.format_for_version(version);
            assert!(
                verify_in("fixture-password", &stored, &mut memory),
                "{stored}"
            );
            assert!(!verify_in("fixture-passwore", &stored, &mut memory));
            assert!(needs_rehash(&stored));
        }
        let ours = hash_in("fixture-password", &mut memory).unwrap();
        assert!(!needs_rehash(&ours));
        assert!(!verify_in("fixture-password", "$2a$04$broken", &mut memory));
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let memory = &mut pool_buffer();
        let phc = hash_in("correct horse", memory).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_in("correct horse", &phc, memory));
        assert!(!verify_in("correct horsf", &phc, memory));
        assert!(!verify_in("correct horse", "not a phc string", memory));
        assert!(!verify_in(
            "correct horse",
            "$argon2id$v=19$m=19456,t=2,p=1",
            memory
        ));
        // Salts are random: the same password never gives the same string twice.
        assert_ne!(hash_in("correct horse", memory).unwrap(), phc);
        assert!(verify_in(
            "correct horse",
            &hash_blocking("correct horse").unwrap(),
            memory
        ));
    }

    #[test]
    fn hashes_from_the_argon2_crate_verify_whatever_their_parameters() {
        let memory = &mut pool_buffer();
        let pw = b"legacy password";
        let default = Argon2::default().hash_password(pw).unwrap().to_string();
        assert!(
            default.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{default}"
        );
        // Less memory than our buffer (its first blocks are used), more (a buffer of its
        // own), another variant and output length, and the old version.
        let others = [
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(8 * 1024, 3, 2, None),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(24 * 1024, 1, 1, None),
            ),
            (
                Algorithm::Argon2i,
                Version::V0x13,
                Params::new(4 * 1024, 2, 1, Some(64)),
            ),
            (
                Algorithm::Argon2d,
                Version::V0x10,
                Params::new(1024, 1, 1, None),
            ),
        ];
        let mut phcs = vec![default];
        for (algorithm, version, params) in others {
            let hasher = Argon2::new(algorithm, version, params.unwrap());
            let salt = secret::random_bytes::<16>();
            phcs.push(
                hasher
                    .hash_password_with_salt(pw, &salt)
                    .unwrap()
                    .to_string(),
            );
        }
        for phc in &phcs {
            assert!(verify_in("legacy password", phc, memory), "{phc}");
            assert!(!verify_in("legacy passwore", phc, memory), "{phc}");
        }
        assert!(
            phcs[2].starts_with("$argon2id$v=19$m=24576,t=1,p=1$"),
            "{}",
            phcs[2]
        );
        // The bigger hash did not make the pooled buffer grow.
        assert_eq!(memory.len(), params().block_count());
    }

    #[test]
    fn the_dummy_hash_is_a_real_hash_at_our_parameters() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(dummy.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(dummy.version, Some(Version::V0x13.into()));
        let p = Params::try_from(&dummy).unwrap();
        let ours = params();
        assert_eq!(
            (p.m_cost(), p.t_cost(), p.p_cost(), p.output_len()),
            (ours.m_cost(), ours.t_cost(), ours.p_cost(), Some(32))
        );
        // The argon2 crate makes the same string from the documented password and salt, so
        // checking a password against it is a full computation, not an early parse error.
        let remade = Argon2::default()
            .hash_password_customized(
                DUMMY_PASSWORD.as_bytes(),
                b"doorward-dummy-salt",
                None,
                None,
                params(),
            )
            .unwrap();
        assert_eq!(remade.to_string(), DUMMY_HASH);
        assert!(verify_in(DUMMY_PASSWORD, DUMMY_HASH, &mut pool_buffer()));
    }

    #[test]
    fn password_length_rules() {
        assert_eq!(
            validate_new_password("1234567"),
            Err(PasswordError::TooShort)
        );
        assert_eq!(validate_new_password("12345678"), Ok(()));
        assert_eq!(
            validate_new_password(&"x".repeat(129)),
            Err(PasswordError::TooLong)
        );
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        let hasher = PasswordHasher::new(2).unwrap();
        assert!(
            !hasher
                .verify(&SecretString::new(DUMMY_PASSWORD), None)
                .await
        );
        let pw = SecretString::new("whatever-password");
        assert!(!hasher.verify(&pw, None).await);
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(hasher.verify(&pw, Some(&phc)).await);
        assert!(
            !hasher
                .verify(&SecretString::new("whatever-passwore"), Some(&phc))
                .await
        );
    }

    /// Runs `work` on `hasher`'s threads and notes, meanwhile, how many jobs run at once.
    async fn timed_job(hasher: &PasswordHasher, running: Arc<AtomicUsize>, most: Arc<AtomicUsize>) {
        hasher
            .run(move |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_limit_hashes_run_at_once_each_in_its_threads_one_buffer() {
        let hasher = PasswordHasher::new(2).unwrap();
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (hasher, running, most) = (hasher.clone(), running.clone(), most.clone());
                tokio::spawn(async move { timed_job(&hasher, running, most).await })
            })
            .collect();
        for job in jobs {
            job.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // One thread: every job gets the same buffer, of our parameters' size.
        let single = PasswordHasher::new(1).unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(
                single
                    .run(|memory| Ok((memory.as_ptr() as usize, memory.len())))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(seen, vec![seen[0]; 3]);
        assert_eq!(seen[0].1, params().block_count());
        let pw = SecretString::new("whatever-password");
        let phc = single.hash(&pw).await.unwrap();
        assert!(single.verify(&pw, Some(&phc)).await);
    }

    #[tokio::test]
    async fn a_job_that_panics_fails_its_request_and_the_thread_goes_on() {
        let hasher = PasswordHasher::new(1).unwrap();
        let failed = hasher.run(|_| -> Result<(), PasswordError> { panic!("in a hash") });
        assert_eq!(failed.await, Err(PasswordError::Hashing));
        // Without a thread left, this would wait forever.
        let pw = SecretString::new("whatever-password");
        let later = tokio::time::timeout(std::time::Duration::from_secs(10), hasher.hash(&pw));
        let phc = later.await.expect("a hashing thread is left").unwrap();
        assert!(hasher.verify(&pw, Some(&phc)).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_queued_for_a_request_that_went_away_is_not_run() {
        let hasher = PasswordHasher::new(1).unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(move |_| {
                        held.recv().ok();
                        Ok(())
                    })
                    .await
            })
        };
        let ran = Arc::new(AtomicUsize::new(0));
        let abandoned = {
            let (hasher, ran) = (hasher.clone(), ran.clone());
            tokio::spawn(async move {
                hasher
                    .run(move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            })
        };
        // Let both be queued, then drop the second request before the thread is free.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // A later job runs after the abandoned one was taken from the queue.
        hasher.run(|_| Ok(())).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
