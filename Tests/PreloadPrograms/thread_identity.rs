// thread_identity.rs — a Rust program's threads, each a thread of its own
// (Rust's standard library waits with futex system calls: Mutex, Condvar,
// park, channels, scoped threads, and keeps thread-local data in TLS):
//   names     thread names and ids: Builder names seen by thread::current(),
//             ids distinct and stable across sleeps, main named "main";
//   channels  mpsc: 8 producers into one consumer, per-producer order kept;
//             a rendezvous sync_channel(0) ping-pong;
//   mutex     Mutex and Condvar under contention, a waiter woken at the end;
//   park      thread::park/unpark: a wake-up and a ping-pong;
//   scope     std::thread::scope: threads borrowing and mutating local data;
//   tls       thread_local! with a Drop type: one value per thread, dropped
//             once at that thread's exit, in that thread;
//   tcp       a thread-per-connection echo server on 127.0.0.1:0 serving 1,000
//             clients (client threads 50 at a time), every byte checked.
// Arguments name the sections to run (default: all, in the order above).
// Self-checking like the C programs (FAIL lines, exit status 1, a watchdog
// alarm); every line printed is deterministic. Builds with rustc 1.63
// (Debian bookworm): nothing newer from std.
use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

static FAILURES: AtomicUsize = AtomicUsize::new(0);

macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            println!("FAIL {}:{}: {}", file!(), line!(), stringify!($cond));
            FAILURES.fetch_add(1, Ordering::SeqCst);
        }
    };
}

extern "C" {
    fn alarm(seconds: u32) -> u32;
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A pause that lets other threads run: a yield, a short sleep, or nothing.
fn pause_a_little(r: usize) {
    match r % 3 {
        0 => thread::yield_now(),
        1 => thread::sleep(Duration::from_micros(100)),
        _ => {}
    }
}

const THREADS: usize = 8;

fn names() {
    check!(thread::current().name() == Some("main"));
    let main_id = thread::current().id();
    let mut handles = Vec::new();
    for i in 0..THREADS {
        let h = thread::Builder::new()
            .name(format!("worker-{}", i))
            .spawn(move || {
                let id = thread::current().id();
                let mut stable = true;
                for r in 0..30 {
                    pause_a_little(r);
                    if thread::current().id() != id || thread::current().name() != Some(format!("worker-{}", i).as_str())
                    {
                        stable = false;
                    }
                }
                (thread::current().name().map(|s| s.to_string()), id, stable)
            })
            .unwrap();
        handles.push(h);
    }
    let mut ids = HashSet::new();
    let mut names_ok = true;
    let mut stable_ok = true;
    for (i, h) in handles.into_iter().enumerate() {
        let handle_id = h.thread().id();
        let (name, id, stable) = h.join().unwrap();
        names_ok &= name == Some(format!("worker-{}", i));
        stable_ok &= stable && id == handle_id;
        ids.insert(id);
    }
    let unnamed = thread::spawn(|| thread::current().name().is_none()).join().unwrap();
    check!(names_ok);
    check!(stable_ok);
    check!(unnamed);
    check!(ids.len() == THREADS && !ids.contains(&main_id));
    println!(
        "names: main is \"main\": yes; {} named threads see their names: {}, unnamed has none: {}; ids distinct: {}, stable across pauses: {}",
        THREADS,
        yes(names_ok),
        yes(unnamed),
        yes(ids.len() == THREADS && !ids.contains(&main_id)),
        yes(stable_ok)
    );
}

fn channels() {
    const MESSAGES: usize = 1000;
    let (tx, rx) = mpsc::channel::<(usize, usize)>();
    let mut producers = Vec::new();
    for p in 0..THREADS {
        let tx = tx.clone();
        producers.push(thread::spawn(move || {
            for k in 0..MESSAGES {
                tx.send((p, k)).unwrap();
                if k % 100 == 0 {
                    thread::sleep(Duration::from_micros(50));
                }
            }
        }));
    }
    drop(tx);
    let mut next = vec![0usize; THREADS];
    let mut in_order = true;
    let mut received = 0;
    for (p, k) in rx {
        // the loop ends when every sender is gone
        in_order &= next[p] == k;
        next[p] = k + 1;
        received += 1;
    }
    for p in producers {
        p.join().unwrap();
    }
    check!(received == THREADS * MESSAGES && in_order);

    // Rendezvous: sync_channel(0) blocks each send until it is received.
    let (ping_tx, ping_rx) = mpsc::sync_channel::<usize>(0);
    let (pong_tx, pong_rx) = mpsc::sync_channel::<usize>(0);
    let ponger = thread::spawn(move || {
        let mut n = 0;
        for v in ping_rx {
            pong_tx.send(v + 1).unwrap();
            n += 1;
        }
        n
    });
    let mut ok = true;
    for r in 0..500 {
        ping_tx.send(r).unwrap();
        ok &= pong_rx.recv().unwrap() == r + 1;
    }
    drop(ping_tx);
    let n = ponger.join().unwrap();
    check!(ok && n == 500);
    println!(
        "mpsc: {} messages from {} producers, each producer's in order: {}; sync_channel(0) ping-pong {} rounds: {}",
        received,
        THREADS,
        yes(in_order),
        n,
        yes(ok)
    );
}

fn mutex() {
    const INCREMENTS: usize = 2000;
    let state = Arc::new((Mutex::new(0usize), Condvar::new()));
    let waiter = {
        let state = state.clone();
        thread::spawn(move || {
            let (lock, cv) = &*state;
            let guard = cv.wait_while(lock.lock().unwrap(), |c| *c != THREADS * INCREMENTS).unwrap();
            *guard
        })
    };
    let mut workers = Vec::new();
    for i in 0..THREADS {
        let state = state.clone();
        workers.push(thread::spawn(move || {
            let (lock, cv) = &*state;
            for r in 0..INCREMENTS {
                {
                    let mut c = lock.lock().unwrap();
                    *c += 1;
                    if *c % 1000 == 0 {
                        cv.notify_all();
                    }
                }
                if (r + i) % 97 == 0 {
                    thread::yield_now();
                }
                if (r + i) % 499 == 0 {
                    thread::sleep(Duration::from_micros(50));
                }
            }
        }));
    }
    for w in workers {
        w.join().unwrap();
    }
    let seen = waiter.join().unwrap();
    let total = *state.0.lock().unwrap();
    check!(total == THREADS * INCREMENTS && seen == total);
    println!(
        "Mutex: {} threads x {} increments = {}, Condvar waiter woken at the end: {}",
        THREADS,
        INCREMENTS,
        total,
        yes(seen == total)
    );
}

fn park() {
    // A wake-up: the thread parks until the flag is set (park may return spuriously).
    let flag = Arc::new(AtomicBool::new(false));
    let parked = {
        let flag = flag.clone();
        thread::spawn(move || {
            let mut parks = 0;
            while !flag.load(Ordering::SeqCst) {
                thread::park();
                parks += 1;
            }
            parks >= 1
        })
    };
    thread::sleep(Duration::from_millis(20));
    flag.store(true, Ordering::SeqCst);
    parked.thread().unpark();
    let did_park = parked.join().unwrap();
    check!(did_park);

    // Ping-pong: turn 0 is main's, 1 the other thread's.
    const ROUNDS: usize = 500;
    let turn = Arc::new(AtomicUsize::new(0));
    let main_thread = thread::current();
    let other = {
        let turn = turn.clone();
        thread::spawn(move || {
            for _ in 0..ROUNDS {
                while turn.load(Ordering::SeqCst) != 1 {
                    thread::park();
                }
                turn.store(0, Ordering::SeqCst);
                main_thread.unpark();
            }
        })
    };
    for _ in 0..ROUNDS {
        while turn.load(Ordering::SeqCst) != 0 {
            thread::park();
        }
        turn.store(1, Ordering::SeqCst);
        other.thread().unpark();
    }
    while turn.load(Ordering::SeqCst) != 0 {
        thread::park();
    }
    other.join().unwrap();
    println!("park/unpark: a parked thread woken: {}; ping-pong {} rounds", yes(did_park), ROUNDS);
}

fn scope() {
    let mut data: Vec<u64> = (0..8000).collect();
    let total_before: u64 = data.iter().sum();
    let sums = Mutex::new(Vec::new());
    thread::scope(|s| {
        for (i, chunk) in data.chunks_mut(1000).enumerate() {
            let sums = &sums;
            s.spawn(move || {
                let mut sum = 0;
                for (k, v) in chunk.iter_mut().enumerate() {
                    *v *= 2;
                    sum += *v;
                    pause_a_little(k % 50);
                }
                sums.lock().unwrap().push((i, sum));
            });
        }
    });
    let total_after: u64 = data.iter().sum();
    let mut sums = sums.into_inner().unwrap();
    sums.sort();
    let parts: u64 = sums.iter().map(|p| p.1).sum();
    let ok = total_after == 2 * total_before && parts == total_after && sums.len() == 8;
    check!(ok);
    // A scoped thread's result through its handle.
    let borrowed = String::from("borrowed");
    let len = thread::scope(|s| s.spawn(|| borrowed.len()).join().unwrap());
    check!(len == 8);
    println!(
        "thread::scope: 8 threads doubled their chunks of a local vector: {}; a result through the scoped handle: {}",
        yes(ok),
        len
    );
}

static DROPS: AtomicUsize = AtomicUsize::new(0);
static WRONG_THREAD: AtomicUsize = AtomicUsize::new(0);
static DROPPED_SLOT: [AtomicUsize; THREADS] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

struct Noisy {
    slot: Option<usize>,
    owner: thread::ThreadId,
    values: Vec<usize>,
}

impl Drop for Noisy {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
        if let Some(s) = self.slot {
            DROPPED_SLOT[s].fetch_add(1, Ordering::SeqCst);
        }
        // thread::current() may be gone already while TLS is torn down: compare
        // the ThreadId saved in another thread-local instead of calling it.
        let same = MY_ID.try_with(|id| *id == self.owner).unwrap_or(true);
        if !same {
            WRONG_THREAD.fetch_add(1, Ordering::SeqCst);
        }
    }
}

thread_local! {
    static NOISY: RefCell<Noisy> = RefCell::new(Noisy { slot: None, owner: thread::current().id(), values: Vec::new() });
    static MY_ID: thread::ThreadId = thread::current().id();
}

fn tls() {
    let mut handles = Vec::new();
    for i in 0..THREADS {
        handles.push(thread::spawn(move || {
            MY_ID.with(|_| {});
            NOISY.with(|n| n.borrow_mut().slot = Some(i));
            let mut own = true;
            for r in 0..50 {
                NOISY.with(|n| n.borrow_mut().values.push(i * 1000 + r));
                pause_a_little(r);
                NOISY.with(|n| {
                    let n = n.borrow();
                    own &= n.slot == Some(i) && n.owner == thread::current().id() && n.values.len() == r + 1;
                });
            }
            let expected: Vec<usize> = (0..50).map(|r| i * 1000 + r).collect();
            NOISY.with(|n| own &= n.borrow().values == expected);
            own
        }));
    }
    let mut own = true;
    for h in handles {
        own &= h.join().unwrap();
    }
    let each_once = DROPPED_SLOT.iter().all(|d| d.load(Ordering::SeqCst) == 1);
    check!(own);
    check!(DROPS.load(Ordering::SeqCst) == THREADS);
    check!(each_once);
    check!(WRONG_THREAD.load(Ordering::SeqCst) == 0);
    println!(
        "thread_local!: {} threads kept their own values across pauses: {}; dropped at thread exit: {}, each once: {}, in its own thread: {}",
        THREADS,
        yes(own),
        DROPS.load(Ordering::SeqCst),
        yes(each_once),
        yes(WRONG_THREAD.load(Ordering::SeqCst) == 0)
    );
}

/// Deterministic bytes for client `c` (xorshift32), 1..=16384 of them.
fn payload(c: usize) -> Vec<u8> {
    let size = 1 + (c * 7919) % 16384;
    let mut x: u32 = (c as u32).wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn tcp() {
    const CLIENTS: usize = 1000;
    const AT_ONCE: usize = 50;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echoed = Arc::new(AtomicUsize::new(0));
    let server = {
        let echoed = echoed.clone();
        thread::spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..CLIENTS {
                let (mut conn, _) = match listener.accept() {
                    Ok(c) => c,
                    Err(e) => {
                        println!("FAIL accept: {}", e);
                        FAILURES.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                };
                let echoed = echoed.clone();
                handlers.push(thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                conn.write_all(&buf[..n]).unwrap();
                                echoed.fetch_add(n, Ordering::SeqCst);
                            }
                            Err(e) => {
                                println!("FAIL server read: {}", e);
                                FAILURES.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                        }
                    }
                }));
            }
            let n = handlers.len();
            for h in handlers {
                h.join().unwrap();
            }
            n
        })
    };
    let good = AtomicUsize::new(0);
    let mut sent = 0usize;
    for batch in 0..CLIENTS / AT_ONCE {
        thread::scope(|s| {
            for k in 0..AT_ONCE {
                let c = batch * AT_ONCE + k;
                let good = &good;
                s.spawn(move || {
                    let data = payload(c);
                    let mut conn = TcpStream::connect(addr).unwrap();
                    conn.write_all(&data).unwrap();
                    conn.shutdown(Shutdown::Write).unwrap();
                    let mut back = Vec::with_capacity(data.len());
                    conn.read_to_end(&mut back).unwrap();
                    if back == data {
                        good.fetch_add(1, Ordering::SeqCst);
                    } else {
                        println!("FAIL client {}: {} bytes sent, {} back, equal prefix: {}", c, data.len(), back.len(),
                                 back.iter().zip(data.iter()).take_while(|p| p.0 == p.1).count());
                        FAILURES.fetch_add(1, Ordering::SeqCst);
                    }
                });
                sent += payload(c).len();
            }
        });
    }
    let served = server.join().unwrap();
    let good = good.load(Ordering::SeqCst);
    check!(good == CLIENTS);
    check!(served == CLIENTS);
    check!(echoed.load(Ordering::SeqCst) == sent);
    println!(
        "tcp: thread-per-connection server served {} clients ({} at a time), echoes equal byte for byte: {}, {} bytes in all: {}",
        served,
        AT_ONCE,
        good,
        sent,
        yes(echoed.load(Ordering::SeqCst) == sent)
    );
}

fn main() {
    unsafe {
        alarm(30); // the watchdog: SIGALRM's default action ends a hang
    }
    let sections: Vec<(&str, fn())> = vec![
        ("names", names),
        ("channels", channels),
        ("mutex", mutex),
        ("park", park),
        ("scope", scope),
        ("tls", tls),
        ("tcp", tcp),
    ];
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    for w in &wanted {
        if !sections.iter().any(|s| s.0 == w.as_str()) {
            println!("FAIL unknown section {}", w);
            std::process::exit(2);
        }
    }
    for (name, f) in &sections {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            f();
        }
    }
    let failures = FAILURES.load(Ordering::SeqCst);
    if failures > 0 {
        println!("thread_identity_rs: {} check(s) FAILED", failures);
        std::process::exit(1);
    }
    println!("thread_identity_rs: all checks passed");
}
