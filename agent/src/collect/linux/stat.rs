//! Parsing one read of `/proc/<pid>/stat` (see proc(5)).

/// The fields of `/proc/<pid>/stat` the collector uses, from one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat<'a> {
    /// The kernel's name for the process (`comm`, at most 15 bytes), as it
    /// stands between the parentheses of field 2.
    pub(super) comm: &'a [u8],
    /// One letter of field 3: `R`, `S`, `D`, `Z`, `T`, `I`...
    pub(super) state: u8,
    /// Field 4; 0 for the processes the kernel starts itself.
    pub(super) parent_pid: u32,
    /// `PF_KTHREAD` of field 9: a kernel thread, which has no command line,
    /// executable or owner of its own.
    pub(super) kernel_thread: bool,
    /// User plus system time (fields 14 and 15), in clock ticks.
    pub(super) cpu_ticks: u64,
    /// Field 18. Parsed for completeness; the wire format has no field for
    /// it yet.
    #[allow(dead_code, reason = "no field for it on the wire yet")]
    pub(super) priority: i64,
    /// Field 19, -20 to 19. As `priority`.
    #[allow(dead_code, reason = "no field for it on the wire yet")]
    pub(super) nice: i64,
    /// Field 20.
    pub(super) threads: u32,
    /// Field 22: clock ticks after boot. With the pid it names the process:
    /// a pid reused by a new process has a different start.
    pub(super) start_ticks: u64,
    /// Field 23, in bytes.
    pub(super) virtual_bytes: u64,
    /// Field 24, in pages.
    pub(super) rss_pages: u64,
}

/// From the kernel's `include/linux/sched.h`.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Parses one read of `/proc/<pid>/stat`. The name may hold spaces and
/// parentheses (a process can call itself `a) b (c`), so it runs to the
/// *last* `)`, and the other fields are counted from there. `None` when the
/// text is cut short or not a stat line.
pub(super) fn parse(data: &[u8]) -> Option<Stat<'_>> {
    let open = data.iter().position(|&b| b == b'(')?;
    let close = data.iter().rposition(|&b| b == b')')?;
    let comm = data.get(open + 1..close)?;
    let rest = std::str::from_utf8(&data[close + 1..]).ok()?;
    // Field 3 is the first after the name: index 0 here is field 3.
    let mut fields = rest.split_ascii_whitespace();
    let mut next = |skip: usize| fields.nth(skip);
    let state = *next(0)?.as_bytes().first()?;
    let parent_pid = next(0)?.parse().ok()?;
    let flags: u64 = next(4)?.parse().ok()?; // field 9
    let utime: u64 = next(4)?.parse().ok()?; // field 14
    let stime: u64 = next(0)?.parse().ok()?;
    let priority = next(2)?.parse().ok()?; // field 18
    let nice = next(0)?.parse().ok()?;
    let threads = next(0)?.parse().ok()?;
    let start_ticks = next(1)?.parse().ok()?; // field 22
    let virtual_bytes = next(0)?.parse().ok()?;
    let rss_pages = next(0)?.parse().ok()?;
    Some(Stat {
        comm,
        state,
        parent_pid,
        kernel_thread: flags & PF_KTHREAD != 0,
        cpu_ticks: utime.saturating_add(stime),
        priority,
        nice,
        threads,
        start_ticks,
        virtual_bytes,
        rss_pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line (Linux 6.x), with the name changed to one that breaks
    /// naive parsing.
    const ODD_NAME: &[u8] = b"1234 (a) b (c d)) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
        5 3 0 0 20 -5 7 0 12345 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 \
        1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn fields_are_counted_from_the_last_parenthesis() {
        let stat = parse(ODD_NAME).unwrap();
        assert_eq!(
            stat,
            Stat {
                comm: b"a) b (c d)",
                state: b'S',
                parent_pid: 1,
                kernel_thread: false,
                cpu_ticks: 8,
                priority: 20,
                nice: -5,
                threads: 7,
                start_ticks: 12345,
                virtual_bytes: 1_000_000,
                rss_pages: 200,
            }
        );
    }

    #[test]
    fn a_truncated_or_foreign_line_is_refused() {
        assert_eq!(parse(b"1234 (x) S 1 2"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"no parentheses at all"), None);
        let cut = &ODD_NAME[..ODD_NAME.len() / 2];
        assert_eq!(parse(cut), None);
    }

    #[test]
    fn this_process_parses() {
        let data = std::fs::read("/proc/self/stat").unwrap();
        let stat = parse(&data).unwrap();
        assert_eq!(stat.parent_pid, std::os::unix::process::parent_id());
        assert!(stat.threads >= 1 && stat.rss_pages > 0 && stat.virtual_bytes > 0);
        assert!(matches!(stat.state, b'R' | b'S'));
        assert!(!stat.kernel_thread);
        // kthreadd, the parent of every kernel thread, is pid 2.
        let kthreadd = std::fs::read("/proc/2/stat").unwrap();
        assert!(parse(&kthreadd).unwrap().kernel_thread);
    }
}
