// Print buttons of the case and shipment pages. Printing a label is recorded in the case's custody
// chain (a repeat as a reprint), so it is a POST carrying the page's CSRF token; the printed label then
// opens from its download address, which only reads.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-print-label]").forEach((button) => {
    button.addEventListener("click", async () => {
      const path = button.dataset.printLabel;
      // Opened during the click, while it still counts as the person's own action: a tab opened after
      // the answer arrives would be stopped by the browser's pop-up blocker.
      const tab = window.open("about:blank", "_blank");
      button.disabled = true;
      try {
        const result = await Celltrail.api("POST", path);
        if (!result.ok) {
          if (tab) tab.close();
          Celltrail.banner(Celltrail.problemText(result), "bad");
          return;
        }
        Celltrail.banner(`Print recorded: ${button.textContent.trim()}.`, "ok");
        if (tab) tab.location.href = path;
        else location.assign(path);
      } catch (e) {
        if (tab) tab.close();
        Celltrail.banner("The print was not recorded: the server cannot be reached. Try again.", "bad");
      } finally {
        button.disabled = false;
      }
    });
  });
});
