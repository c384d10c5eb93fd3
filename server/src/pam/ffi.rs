//! The Linux-PAM calls mshd makes, through libpam-sys (the raw FFI layer of the `nonstick`
//! crate; nonstick itself has no pam_setcred, pam_open_session or pam_close_session yet and
//! does not expose its handle). Like [`crate::sys`], one of the two modules of msh allowed
//! `unsafe`: each foreign call is wrapped once here, with its SAFETY argument, and everything
//! else uses [`Pam`].
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;

use libpam_sys as sys;

/// What a PAM call returned when it was not PAM_SUCCESS: the code and pam_strerror's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamError {
    /// The PAM return code (PAM_ACCT_EXPIRED, PAM_PERM_DENIED, ...).
    pub code: c_int,
    /// pam_strerror's text for it.
    pub text: String,
}

impl std::fmt::Display for PamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `PAM_NEW_AUTHTOK_REQD`: pam_acct_mgmt's "the password must be changed".
pub const NEW_AUTHTOK_REQD: c_int = sys::PAM_NEW_AUTHTOK_REQD;

/// The messages modules sent through the conversation (PAM_TEXT_INFO and PAM_ERROR_MSG),
/// in order. Prompts are never answered: mshd does not authenticate through PAM, and a
/// module that asks for input (a password change) fails its step instead of hanging.
#[derive(Default)]
struct Conversation {
    messages: RefCell<Vec<String>>,
}

/// Linux-PAM's conversation callback (`pam_conv.conv`).
///
/// SAFETY (of the body): Linux-PAM calls it with `msg` pointing to `num_msg` valid pointers to
/// `pam_message`s whose `msg` is a NUL-terminated string or null (Linux-PAM's layout: an array
/// of pointers), `resp` a valid place for the answer array, and `appdata` the pointer given
/// to pam_start, a `Conversation` that [`Pam`] keeps boxed (so at a fixed address) for the
/// whole transaction and that is only used from the transaction's thread.
unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *const *const sys::pam_message,
    resp: *mut *mut sys::pam_response,
    appdata: *mut c_void,
) -> c_int {
    if resp.is_null() {
        return sys::PAM_CONV_ERR;
    }
    // SAFETY: resp is a valid out pointer (checked non-null above, as PAM passes it).
    unsafe { *resp = std::ptr::null_mut() };
    let Ok(n) = usize::try_from(num_msg) else {
        return sys::PAM_CONV_ERR;
    };
    if n == 0 || msg.is_null() || appdata.is_null() || n > sys::PAM_MAX_NUM_MSG as usize {
        return sys::PAM_CONV_ERR;
    }
    // SAFETY: appdata is the boxed Conversation (see the function's SAFETY note).
    let conv = unsafe { &*(appdata as *const Conversation) };
    let mut texts = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: i < num_msg, so msg.add(i) is inside the array of pointers.
        let m = unsafe { *msg.add(i) };
        if m.is_null() {
            return sys::PAM_CONV_ERR;
        }
        // SAFETY: m points to a pam_message for the duration of the call.
        let m = unsafe { &*m };
        match m.msg_style {
            sys::PAM_TEXT_INFO | sys::PAM_ERROR_MSG => {
                if !m.msg.is_null() {
                    // SAFETY: a non-null msg is a NUL-terminated string.
                    let text = unsafe { CStr::from_ptr(m.msg) };
                    texts.push(String::from_utf8_lossy(text.to_bytes()).into_owned());
                }
            }
            // A prompt (or a vendor-specific style): never answered.
            _ => return sys::PAM_CONV_ERR,
        }
    }
    // PAM frees the answers (and each non-null resp string) with free(3): calloc'd,
    // zeroed, so every answer is "no text".
    // SAFETY: calloc has no preconditions; a null result is handled.
    let answers = unsafe {
        nix::libc::calloc(n, std::mem::size_of::<sys::pam_response>()) as *mut sys::pam_response
    };
    if answers.is_null() {
        return sys::PAM_BUF_ERR;
    }
    if let Ok(mut all) = conv.messages.try_borrow_mut() {
        all.extend(texts);
    }
    // SAFETY: resp is a valid out pointer; PAM takes ownership of the array.
    unsafe { *resp = answers };
    sys::PAM_SUCCESS
}

/// One PAM transaction (pam_start .. pam_end), used from one thread.
pub struct Pam {
    handle: NonNull<sys::pam_handle>,
    /// The last result, passed to pam_end for the modules' cleanup.
    last: c_int,
    /// Boxed: PAM keeps its address (appdata) until pam_end.
    conv: Box<Conversation>,
    /// Copied by Linux-PAM at pam_start, kept for PAM implementations that do not copy it.
    _pam_conv: Box<sys::pam_conv>,
}

fn cstring(what: &str, s: &str) -> Result<CString, PamError> {
    CString::new(s).map_err(|_| PamError {
        code: sys::PAM_BUF_ERR,
        text: format!("{what} contains a NUL byte"),
    })
}

impl Pam {
    /// pam_start(service, user) with mshd's conversation (messages kept, prompts refused).
    pub fn start(service: &str, user: &str) -> Result<Pam, PamError> {
        let c_service = cstring("the PAM service name", service)?;
        let c_user = cstring("the user name", user)?;
        let conv = Box::<Conversation>::default();
        let mut pam_conv = Box::new(sys::pam_conv {
            conv: converse,
            appdata_ptr: &*conv as *const Conversation as *mut c_void,
        });
        let mut handle: *mut sys::pam_handle = std::ptr::null_mut();
        // SAFETY: both strings are NUL-terminated and live for the call (PAM copies them);
        // pam_conv and the Conversation it points to are boxed and outlive the transaction
        // (they are fields of the Pam that owns the handle); handle is a valid out pointer.
        let rc = unsafe {
            sys::pam_start(
                c_service.as_ptr(),
                c_user.as_ptr(),
                &mut *pam_conv,
                &mut handle,
            )
        };
        let Some(handle) = NonNull::new(handle) else {
            return Err(PamError {
                code: rc,
                text: format!("pam_start failed (PAM error {rc})"),
            });
        };
        let pam = Pam {
            handle,
            last: rc,
            conv,
            _pam_conv: pam_conv,
        };
        pam.check(rc)?;
        Ok(pam)
    }

    fn check(&self, rc: c_int) -> Result<(), PamError> {
        if rc == sys::PAM_SUCCESS {
            return Ok(());
        }
        // SAFETY: the handle is live; pam_strerror returns a static string or null.
        let p: *const c_char = unsafe { sys::pam_strerror(self.handle.as_ptr(), rc) };
        let text = if p.is_null() {
            format!("PAM error {rc}")
        } else {
            // SAFETY: a non-null result is a NUL-terminated static string.
            String::from_utf8_lossy(unsafe { CStr::from_ptr(p) }.to_bytes()).into_owned()
        };
        Err(PamError { code: rc, text })
    }

    fn record(&mut self, rc: c_int) -> Result<(), PamError> {
        self.last = rc;
        self.check(rc)
    }

    fn set_item(&mut self, item: c_int, value: &str, what: &str) -> Result<(), PamError> {
        let v = cstring(what, value)?;
        // SAFETY: the handle is live and v a NUL-terminated string for the call (PAM copies
        // string items).
        let rc = unsafe { sys::pam_set_item(self.handle.as_ptr(), item, v.as_ptr().cast()) };
        self.record(rc)
    }

    /// PAM_RHOST: the client's address (sshd: the address, as UseDNS no).
    pub fn set_rhost(&mut self, rhost: &str) -> Result<(), PamError> {
        self.set_item(sys::PAM_RHOST, rhost, "the remote host")
    }

    /// PAM_TTY: the PTY's path, or "ssh" for a session without one (as sshd).
    pub fn set_tty(&mut self, tty: &str) -> Result<(), PamError> {
        self.set_item(sys::PAM_TTY, tty, "the terminal name")
    }

    /// pam_acct_mgmt (flags 0, as sshd: pam_nologin then says why, and mshd logs it).
    pub fn acct_mgmt(&mut self) -> Result<(), PamError> {
        // SAFETY: the handle is live.
        let rc = unsafe { sys::pam_acct_mgmt(self.handle.as_ptr(), 0) };
        self.record(rc)
    }

    /// pam_setcred(PAM_ESTABLISH_CRED) or (PAM_DELETE_CRED).
    pub fn setcred(&mut self, establish: bool) -> Result<(), PamError> {
        let flag = if establish {
            sys::PAM_ESTABLISH_CRED
        } else {
            sys::PAM_DELETE_CRED
        };
        // SAFETY: the handle is live.
        let rc = unsafe { sys::pam_setcred(self.handle.as_ptr(), flag) };
        self.record(rc)
    }

    /// pam_open_session.
    pub fn open_session(&mut self) -> Result<(), PamError> {
        // SAFETY: the handle is live.
        let rc = unsafe { sys::pam_open_session(self.handle.as_ptr(), 0) };
        self.record(rc)
    }

    /// pam_close_session.
    pub fn close_session(&mut self) -> Result<(), PamError> {
        // SAFETY: the handle is live.
        let rc = unsafe { sys::pam_close_session(self.handle.as_ptr(), 0) };
        self.record(rc)
    }

    /// pam_getenvlist: the `NAME=value` entries modules set (pam_env, pam_systemd's
    /// XDG_RUNTIME_DIR, ...), as bytes.
    pub fn env_list(&self) -> Vec<Vec<u8>> {
        // SAFETY: the handle is live; the result is a malloc'd, null-terminated array of
        // malloc'd strings that the caller owns and frees (pam_getenvlist(3)).
        let list = unsafe { sys::pam_getenvlist(self.handle.as_ptr()) };
        let mut out = Vec::new();
        if list.is_null() {
            return out;
        }
        let mut i = 0;
        loop {
            // SAFETY: the array is null-terminated and i has not passed the terminator.
            let p = unsafe { *list.add(i) };
            if p.is_null() {
                break;
            }
            // SAFETY: each entry is a NUL-terminated string; freed once, after copying.
            unsafe {
                out.push(CStr::from_ptr(p).to_bytes().to_vec());
                nix::libc::free(p.cast());
            }
            i += 1;
        }
        // SAFETY: the array itself, freed once after its entries.
        unsafe { nix::libc::free(list.cast()) };
        out
    }

    /// The messages modules sent so far, taken.
    pub fn take_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut *self.conv.messages.borrow_mut())
    }
}

impl Drop for Pam {
    fn drop(&mut self) {
        // SAFETY: the handle is live and ended exactly once, here; the conversation boxes
        // are dropped after this call (fields drop after Drop::drop).
        unsafe { sys::pam_end(self.handle.as_ptr(), self.last) };
    }
}
