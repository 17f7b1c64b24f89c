// A JVM's threads natively and under `green run` (Tests/Compat/programs,
// checks java-threads-*): every line this prints is the same in both runs.
// HotSpot is a demanding guest: its own threads (GC, JIT compilers, the VM
// thread) park on futexes and condition variables, its safepoints and
// implicit null checks take SIGSEGV on the faulting thread and find that
// thread through its TLS, and Java threads are pthreads. Run as a source
// file: `java Threads.java`. `java Threads.java sleepers` instead starts
// four named threads that sleep, prints "ready" and sleeps: a process for
// `jcmd PID Thread.print` (the attach listener: SIGQUIT, then a socket).
import java.io.*;
import java.net.*;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;
import java.util.stream.*;

public class Threads {
    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("sleepers")) {
            for (int i = 0; i < 4; i++) {
                Thread t = new Thread(() -> { try { Thread.sleep(600_000); } catch (InterruptedException e) { } }, "sleeper-" + i);
                t.setDaemon(true);
                t.start();
            }
            System.out.println("ready");
            System.out.flush();
            Thread.sleep(600_000);
            return;
        }
        // A pool's futures: 32 tasks on 8 threads.
        ExecutorService pool = Executors.newFixedThreadPool(8);
        List<Future<Long>> futures = new ArrayList<>();
        for (int i = 0; i < 32; i++) {
            final int k = i;
            futures.add(pool.submit(() -> { long s = 0; for (int j = 0; j < 200_000; j++) s += j ^ k; return s; }));
        }
        long sum = 0;
        for (Future<Long> f : futures) sum += f.get();
        System.out.println("futures " + sum);

        // The common fork-join pool.
        System.out.println("parallel stream " + IntStream.range(0, 2_000_000).parallel().mapToLong(i -> (long) i * i % 7).sum());

        // A monitor taken 160,000 times by 16 threads.
        final Object lock = new Object();
        final int[] count = {0};
        Thread[] adders = new Thread[16];
        for (int i = 0; i < adders.length; i++) {
            adders[i] = new Thread(() -> { for (int j = 0; j < 10_000; j++) synchronized (lock) { count[0]++; } });
            adders[i].start();
        }
        for (Thread t : adders) t.join();
        System.out.println("synchronized " + count[0]);

        // A bounded queue between a producer and this thread.
        BlockingQueue<Integer> queue = new ArrayBlockingQueue<>(4);
        Thread producer = new Thread(() -> {
            try { for (int i = 0; i < 1000; i++) queue.put(i); queue.put(-1); } catch (InterruptedException e) { }
        });
        producer.start();
        long taken = 0;
        for (int v; (v = queue.take()) >= 0; ) taken += v;
        producer.join();
        System.out.println("queue " + taken);

        // 50 threads sleeping 200 ms each overlap (in well under 50 × 200 ms).
        long start = System.nanoTime();
        Thread[] sleepers = new Thread[50];
        for (int i = 0; i < sleepers.length; i++) {
            sleepers[i] = new Thread(() -> { try { Thread.sleep(200); } catch (InterruptedException e) { } });
            sleepers[i].start();
        }
        for (Thread t : sleepers) t.join();
        System.out.println("sleeps overlap " + ((System.nanoTime() - start) / 1_000_000 < 50 * 200 / 2));

        // A thread-per-connection echo server and 20 clients, 50 KB each.
        ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread acceptor = new Thread(() -> {
            try {
                while (true) {
                    Socket c = server.accept();
                    new Thread(() -> {
                        try (c) {
                            InputStream in = c.getInputStream();
                            OutputStream out = c.getOutputStream();
                            byte[] b = new byte[4096];
                            for (int n; (n = in.read(b)) > 0; ) out.write(b, 0, n);
                        } catch (IOException e) { }
                    }).start();
                }
            } catch (IOException e) { }
        });
        acceptor.setDaemon(true);
        acceptor.start();
        AtomicLong echoed = new AtomicLong();
        Thread[] clients = new Thread[20];
        for (int i = 0; i < clients.length; i++) {
            final byte fill = (byte) i;
            clients[i] = new Thread(() -> {
                try (Socket s = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
                    OutputStream out = s.getOutputStream();
                    InputStream in = s.getInputStream();
                    byte[] message = new byte[1000], back = new byte[1000];
                    Arrays.fill(message, fill);
                    for (int round = 0; round < 50; round++) {
                        out.write(message);
                        for (int got = 0; got < 1000; ) {
                            int n = in.read(back, got, 1000 - got);
                            if (n < 0) throw new IOException("end of stream after " + got + " bytes");
                            got += n;
                        }
                        if (!Arrays.equals(message, back)) throw new IOException("wrong bytes back");
                        echoed.addAndGet(1000);
                    }
                } catch (IOException e) {
                    System.out.println("client failed: " + e);
                }
            });
            clients[i].start();
        }
        for (Thread t : clients) t.join();
        System.out.println("echoed " + echoed.get());

        // Async stages, and an interrupt that ends a sleep.
        System.out.println("completable future " + CompletableFuture.supplyAsync(() -> 21).thenApplyAsync(x -> x * 2).get());
        Thread sleeper = new Thread(() -> {
            try { Thread.sleep(60_000); System.out.println("sleep not interrupted"); }
            catch (InterruptedException e) { System.out.println("sleep interrupted"); }
        });
        sleeper.start();
        Thread.sleep(100);
        sleeper.interrupt();
        sleeper.join();

        // Allocation on 4 threads at once: the collector stops them at safepoints.
        ExecutorService allocators = Executors.newFixedThreadPool(4);
        List<Future<Integer>> results = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            results.add(allocators.submit(() -> {
                int odd = 0;
                for (int j = 0; j < 200_000; j++) { int[] a = new int[64]; a[j % 64] = j; odd += a[j % 64] & 1; }
                return odd;
            }));
        }
        int odd = 0;
        for (Future<Integer> f : results) odd += f.get();
        System.out.println("allocations " + odd);

        // An implicit null check: a SIGSEGV the JVM turns into an exception on this thread.
        int[][] holder = new int[1][];
        int caught = 0;
        for (int i = 0; i < 100_000; i++) {
            try { caught += holder[0].length; } catch (NullPointerException e) { caught++; }
        }
        System.out.println("null pointer exceptions " + caught);

        pool.shutdown();
        allocators.shutdown();
        System.out.println("done");
    }
}
