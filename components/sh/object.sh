# The create and delete of one host object (components/hostState.ts): a FOU port, a link, an
# address, a route, a boot unit. The generated part of a step defines the object as functions
#   fou_check    exits 0 when the object is as declared, else prints what differs and exits 1
#   fou_apply    makes it so (idempotent)
#   fou_remove   removes it (nothing when it is gone)
#   fou_present  (exclusive objects) exits 0 when anything holds the object's name at all
#   fou_report   prints lines after the instance line (e.g. mtu=1472)
# and sets, quoted, before it calls fou_object_create or fou_object_delete:
#   f            the id file, <root>/<namespace>/<resource>.id
#   fou_at       how messages name the host and object (`k1: link ftok2`)
#   fou_root     the state root (/var/lib/fou-tunnel)
#   fou_owner    an exclusive object's owner file, else empty
#   fou_what     an exclusive object's name in messages (`link ftok2`)
#   fou_shared   a shared object's claims directory, else empty
#   fou_claim    this resource's claim in it
# shellcheck shell=sh disable=SC2154 # the variables above are set by the step

# Sets owner to the id file named in owner file $fou_owner; empty when there is none.
fou_read_owner() {
  owner=
  if [ -f "$fou_owner" ]; then read -r owner < "$fou_owner" || true; fi
}

# Succeeds when the shared object's claims directory holds a claim (a glob, no `ls | grep`).
fou_claimed() {
  for fou_c in "$fou_shared"/*; do [ -e "$fou_c" ] && break; done
  [ -e "$fou_c" ]
}

# Refuses a name another stack owns, or that something this stack did not make holds (a tunnel
# made by hand, another tool): the create would replace it, and destroy would delete it.
fou_owner_check() {
  claimed=0
  fou_read_owner
  # An owner whose id file is gone (its stack was removed without its delete) holds nothing.
  if [ -n "$owner" ] && [ "$owner" != "$f" ] && [ -e "$owner" ]; then
    printf 'fou-tunnel: %s: %s belongs to another stack (its state: %s); not taking it over\n' "$fou_at" "$fou_what" "$owner" >&2
    exit 1
  fi
  if [ "$owner" != "$f" ] && fou_present >/dev/null 2>&1; then
    printf 'fou-tunnel: %s: %s exists already and this stack did not make it (by hand, or another tool); remove it or choose another name\n' "$fou_at" "$fou_what" >&2
    exit 1
  fi
}

# Records this resource as the owner of the name before anything is applied, unless it is.
fou_take_name() {
  if [ "$owner" != "$f" ]; then
    [ -d "${fou_owner%/*}" ] || mkdir -p "${fou_owner%/*}"
    printf '%s\n' "$f" > "$fou_owner.tmp"; mv "$fou_owner.tmp" "$fou_owner"
    # shellcheck disable=SC2034 # read by fou_undo (undo.sh)
    claimed=1; fou_changing=1
  fi
}

# Drops an owner claim this run made (a failed create: no delete would ever drop it).
fou_drop_name() {
  if [ "$claimed" = 1 ]; then rm -f "$fou_owner"; fi
  rmdir "$fou_root/owners" "$fou_root" 2>/dev/null || true
}

# The delete of an exclusive object: only the owner removes it.
fou_owner_delete() {
  fou_read_owner
  if [ "$owner" = "$f" ]; then
    fou_remove
    rm -f "$fou_owner"; rmdir "${fou_owner%/*}" 2>/dev/null || true
  fi
}

# What a create that failed after it began puts back: the object (a shared one only when no
# other stack claims it), and an owner claim this run made.
fou_object_put_back() {
  if [ -z "$fou_shared" ] || ! fou_claimed; then fou_remove; fi
  if [ -n "$fou_owner" ]; then fou_drop_name; fi
}

# Adopts an object that passes its check already (a re-run, a crashed run's leftover) and keeps
# its instance id, so nothing built on it is replaced; otherwise applies it, checks it, and
# records a fresh id. Prints instance=<id>, then the object's report.
fou_object_create() {
  if [ -n "$fou_owner" ]; then fou_owner_check; fi
  fou_guard fou_object_put_back
  if [ -n "$fou_owner" ]; then fou_take_name; fi
  fresh=
  if ! fou_check >/dev/null 2>&1; then
    # shellcheck disable=SC2034 # read by fou_undo (undo.sh)
    fou_changing=1
    fou_run_apply fou_apply
    if ! why=$(fou_check 2>&1); then echo "fou-tunnel: $fou_at: applied, but the host does not show it: $why" >&2; exit 1; fi
    fresh=1
  fi
  # A rebuilt object gets a new id. The id is written in place, not renamed into it: one line is
  # one write, and an id file left empty by a kill reads as none (-s), so the next create gives
  # it an id.
  if [ -n "$fresh" ] || [ ! -s "$f" ]; then
    [ -d "${f%/*}" ] || mkdir -p "${f%/*}"
    read -r u < /proc/sys/kernel/random/uuid; printf '%s\n' "$u" > "$f"
  fi
  if [ -n "$fou_shared" ]; then
    [ -d "$fou_shared" ] || mkdir -p "$fou_shared"
    [ -e "$fou_claim" ] || : > "$fou_claim"
  fi
  read -r id < "$f"; echo "instance=$id"
  fou_report
}

# Removes the object only while this resource owns it, or holds the last claim on it; then its
# id file, and the state directories when they are empty (quietly: others may use them).
fou_object_delete() {
  if [ -n "$fou_owner" ]; then
    fou_owner_delete
  elif [ -n "$fou_shared" ]; then
    rm -f "$fou_claim"
    # Another stack still uses the object: leave it to that stack's delete.
    if ! fou_claimed; then
      fou_remove
      rmdir "$fou_shared" 2>/dev/null || true; rmdir "$fou_root/shared" 2>/dev/null || true
    fi
  else
    fou_remove
  fi
  rm -f "$f"
  rmdir "${f%/*}" 2>/dev/null || true; rmdir "$fou_root" 2>/dev/null || true
}
