// A comparison's or variations' grid: Play, Pause and seeking on any video act on all of them.
// Without this script each player plays on its own. No inline script (the CSP forbids it).
(function () {
  "use strict";

  var grid = document.querySelector("[data-sync-group]");
  if (!grid) return;
  // How far apart (seconds) two players may drift before a seek brings the others along.
  var SEEK_TOLERANCE = 0.25;

  function videos() {
    return Array.prototype.slice.call(grid.querySelectorAll("video"));
  }

  function others(source) {
    return videos().filter(function (video) { return video !== source; });
  }

  // The seeks this script made, by player: the time each was sent to. A player's "seeked"
  // event at that time is the echo of another player's seek and moves no one.
  var following = new WeakMap();

  function follow(video, time) {
    following.set(video, time);
    video.currentTime = time;
  }

  function play(video, time) {
    if (time !== undefined && time < (video.duration || Infinity)) follow(video, time);
    var started = video.play();
    // A browser may refuse (a video not loaded yet, an autoplay rule): that player stays put.
    if (started && started.catch) started.catch(function () {});
  }

  // Each handler changes only the players that differ, so the events it causes in them find
  // nothing left to do: no loop. Media events are queued, so one can arrive after its player has
  // changed again (paused, then played before the "pause" event ran): such a stale event is
  // ignored, or two stale events would keep pausing and playing every player in turn while the
  // videos are still loading. Media events do not bubble, so they are caught on the way down.
  grid.addEventListener("play", function (event) {
    var source = event.target;
    if (source.paused) return; // stale: paused again since
    others(source).forEach(function (video) {
      if (video.paused && !video.ended) play(video, source.currentTime);
    });
  }, true);

  grid.addEventListener("pause", function (event) {
    var source = event.target;
    if (!source.paused) return; // stale: playing again since
    if (source.ended) return; // a shorter video finishing does not stop the longer ones
    others(source).forEach(function (video) {
      if (!video.paused) video.pause();
    });
  }, true);

  // Only a person's seek moves the others. An echo (a player arriving where this script sent
  // it) moves no one: it can land after the person has sought again elsewhere, and would send
  // everyone back. A "seeked" while the player is already seeking again is stale too: the newer
  // seek's own event follows.
  grid.addEventListener("seeked", function (event) {
    var source = event.target;
    if (source.seeking) return;
    var sent = following.get(source);
    following.delete(source);
    if (sent !== undefined && Math.abs(source.currentTime - sent) < 0.01) return;
    others(source).forEach(function (video) {
      var target = Math.min(source.currentTime, video.duration || source.currentTime);
      if (Math.abs(video.currentTime - target) > SEEK_TOLERANCE) follow(video, target);
    });
  }, true);

  var controls = document.querySelector("[data-sync-controls]");
  if (controls) {
    controls.hidden = false;
    controls.addEventListener("click", function (event) {
      var button = event.target.closest("[data-sync-action]");
      if (!button) return;
      var all = videos();
      if (button.getAttribute("data-sync-action") === "play") {
        var from = all.length ? all[0].currentTime : 0;
        all.forEach(function (video) { if (video.paused) play(video, from); });
      } else {
        all.forEach(function (video) { if (!video.paused) video.pause(); });
      }
    });
  }
})();
