/*
 * Security descriptors of new files: the self-relative SD (MS-DTYP 2.4.6)
 * NTFS gives a file or directory created without an explicit one, computed
 * from its parent directory's SD by ACE inheritance as Windows does.  Pure
 * code over outside bytes: every offset and length of the parent is checked.
 */
#ifndef WTGFS_SD_H
#define WTGFS_SD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SECURITY_DESCRIPTOR control bits */
#define WTG_SE_DACL_PRESENT 0x0004
#define WTG_SE_SACL_PRESENT 0x0010
#define WTG_SE_DACL_AUTO_INHERITED 0x0400
#define WTG_SE_SACL_AUTO_INHERITED 0x0800
#define WTG_SE_DACL_PROTECTED 0x1000
#define WTG_SE_SELF_RELATIVE 0x8000

/* ACE types */
#define WTG_ACE_ACCESS_ALLOWED 0x00
#define WTG_ACE_ACCESS_DENIED 0x01
#define WTG_ACE_SYSTEM_AUDIT 0x02
#define WTG_ACE_ACCESS_ALLOWED_OBJECT 0x05
#define WTG_ACE_SYSTEM_MANDATORY_LABEL 0x11

/* ACE flags */
#define WTG_ACE_OBJECT_INHERIT 0x01
#define WTG_ACE_CONTAINER_INHERIT 0x02
#define WTG_ACE_NO_PROPAGATE_INHERIT 0x04
#define WTG_ACE_INHERIT_ONLY 0x08
#define WTG_ACE_INHERITED 0x10
#define WTG_ACE_SUCCESSFUL_ACCESS 0x40
#define WTG_ACE_FAILED_ACCESS 0x80

/*
 * The self-relative SD a new file (@is_dir false) or directory gets inside a
 * directory whose SD is @parent.  No access token here, so:
 *  - owner and group are the parent's (CREATOR OWNER / CREATOR GROUP in
 *    inherited ACEs become them);
 *  - DACL and SACL are built from the parent's inheritable ACEs with the
 *    Windows rules (OI/CI/NP/IO, generic rights mapped with the file
 *    generic mapping, an ACE both effective and inheritable with generic
 *    rights or a creator SID split into an effective and an inherit-only
 *    one), in the parent's order, with INHERITED set;
 *  - a parent without a DACL (NULL DACL: everyone has full access) gives a
 *    child without one;
 *  - when nothing of a present parent DACL reaches the child, the child gets
 *    the stand-in for a token's default DACL: SYSTEM, BUILTIN\Administrators
 *    and the owner with full control (0x1F01FF), not auto-inherited;
 *  - a SACL is present only when some parent SACL ACE is inherited.
 * Object ACEs and the mandatory-label, resource-attribute and scoped-policy
 * ACEs are inherited with the same flag rules but copied as they are (no
 * mapping, no SID replacement, never split); ACE types MS-DTYP does not
 * define (4, above 0x13) are not inherited.
 * The layout is Windows': header, SACL, DACL, owner SID, group SID; ACL
 * revision 2, or 4 when an object ACE is in it.
 * On success *child_ret (malloc'd) and *len_ret are set and 0 is returned.
 * -EINVAL when @parent is not a valid SD (see wtg_sd_valid) or has no owner
 * or no group, -EOVERFLOW when a child ACL would pass 64 KiB, -ENOMEM.
 */
int wtg_sd_inherit(const uint8_t *parent, size_t len, bool is_dir, uint8_t **child_ret,
		   size_t *len_ret);

/*
 * True when @sd is a well-formed self-relative SD: revision 1, the
 * self-relative bit set, owner, group and each ACL the control says is
 * present (offset 0: none) inside the @len bytes; SIDs of revision 1 with at
 * most 15 sub-authorities; ACLs of revision 2 to 4, of a size that is a
 * multiple of 4, whose AceCount ACEs (sizes multiples of 4 too) fit in that
 * size and hold their SIDs (and object GUIDs).  Bytes after the last ACE of
 * an ACL, or between the parts, are allowed.
 */
bool wtg_sd_valid(const uint8_t *sd, size_t len);

/* A security descriptor in SDDL terms (for diff): owner and group as SDDL
 * SIDs (an alias such as "SY" or "BA" for well-known ones, else
 * "S-1-5-..."), each ACE as "(type;flags;rights;object;inherited;sid)". */
struct wtg_sd_text {
	uint16_t control;
	char owner[200], group[200]; /* "" when absent */
	bool dacl_present, sacl_present;
	char **dacl, **sacl;
	size_t ndacl, nsacl;
};
/* Fills @out (release with wtg_sd_text_release) from a valid SD: -EINVAL
 * when wtg_sd_valid() would say no, -ENOMEM. */
int wtg_sd_describe(const uint8_t *sd, size_t len, struct wtg_sd_text *out);
void wtg_sd_text_release(struct wtg_sd_text *text);

#endif
