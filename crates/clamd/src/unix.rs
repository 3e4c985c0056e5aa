//! A Unix stream that also receives file descriptors (SCM_RIGHTS), for
//! clamd's FILDES command (`clamdscan --fdpass`).

use crate::session::FdQueue;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::UnixStream;

/// Descriptors accepted per received message (more are closed by the kernel).
const FDS_PER_MESSAGE: usize = 8;

/// A [`UnixStream`] whose reads collect passed descriptors into a queue.
pub struct FdStream {
    inner: UnixStream,
    fds: FdQueue,
}

impl FdStream {
    pub fn new(inner: UnixStream) -> FdStream {
        FdStream {
            inner,
            fds: FdQueue::default(),
        }
    }

    /// The queue FILDES takes descriptors from, in arrival order.
    pub fn fd_queue(&self) -> FdQueue {
        self.fds.clone()
    }
}

/// One `recvmsg` into `dst`; descriptors that came with the bytes are pushed
/// onto `q` (close-on-exec, owned: dropped means closed).
fn recv_with_fds(fd: RawFd, dst: &mut [MaybeUninit<u8>], q: &FdQueue) -> io::Result<usize> {
    // Room for FDS_PER_MESSAGE descriptors, aligned for cmsghdr.
    let mut cbuf = [0u64; 16];
    debug_assert!(
        // SAFETY: CMSG_SPACE only computes a size.
        unsafe { libc::CMSG_SPACE((FDS_PER_MESSAGE * std::mem::size_of::<libc::c_int>()) as u32) }
            as usize
            <= std::mem::size_of_val(&cbuf)
    );
    let mut iov = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths); the
    // pointers set below stay valid for the duration of the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: `fd` is an open socket owned by the caller; `msg` points at a
    // writable buffer of `dst.len()` bytes and a control buffer of the given
    // size. recvmsg writes at most that much into each.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `msg_control` with `msg_controllen` bytes of
    // well-formed cmsghdrs; CMSG_FIRSTHDR/NXTHDR stay inside that range, and
    // SCM_RIGHTS data is an array of descriptors now owned by this process.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const libc::c_int;
                let len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let mut got = q.lock().unwrap_or_else(|e| e.into_inner());
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    let raw = std::ptr::read_unaligned(data.add(i));
                    got.push_back(OwnedFd::from_raw_fd(raw));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(n as usize)
}

impl AsyncRead for FdStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            ready!(me.inner.poll_read_ready(cx))?;
            let fd = me.inner.as_raw_fd();
            let q = me.fds.clone();
            // SAFETY: recvmsg only writes initialised bytes into the unfilled
            // part and we mark exactly the `n` bytes it wrote as initialised.
            let dst = unsafe { buf.unfilled_mut() };
            match me
                .inner
                .try_io(Interest::READABLE, || recv_with_fds(fd, dst, &q))
            {
                Ok(n) => {
                    // SAFETY: the kernel wrote `n` bytes at the start of `dst`.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for FdStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
